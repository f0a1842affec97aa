"""Read audit-log files into events without Kafka (``kmo detect``, tests): the same framing,
parsers, request pairing and sequence-gap checks as the collector, with failures counted."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ingest.collectors.inputs import InputError, local_inputs
from ingest.framing import decode_bytes
from ingest.parsers import PAIRING, PARSERS, SEQUENCED, ParseError, RawRecord, framer_for
from ingest.runner import next_gap
from ingest.schema import KeyEvent


@dataclass
class OfflineStats:
    records: int = 0
    events: int = 0
    skipped: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    dead: list[tuple[str, str]] = field(default_factory=list)  # (origin, reason)


def read_events(source: str, locations: Sequence[str], stats: OfflineStats | None = None) -> Iterator[KeyEvent]:
    """Every event in ``locations`` (files or directories), in input order."""
    stats = stats if stats is not None else OfflineStats()
    parse = PARSERS[source]
    pairing = PAIRING.get(source)
    sequenced = SEQUENCED.get(source)
    last_seq: dict[tuple[str, int], int] = {}
    for location in locations:
        try:
            inputs = list(local_inputs(location))
        except InputError as exc:
            stats.unreadable.append((exc.name, exc.reason))
            continue
        for inp in inputs:
            try:
                data = inp.read_bytes()
            except InputError as exc:
                stats.unreadable.append((exc.name, exc.reason))
                continue
            opened: dict[str, RawRecord] = {}
            for frame in framer_for(source)(decode_bytes(data).text):
                stats.records += 1
                origin = f"{inp.name}#{frame.index}"
                if frame.error is not None:
                    stats.dead.append((origin, frame.error))
                    continue
                record = RawRecord(frame.text, frame.obj, origin)
                if pairing is not None:
                    pid = pairing.pair_id(frame.obj)
                    if pid and pid[1] == "request":
                        opened[pid[0]] = record
                    elif pid:
                        opened.pop(pid[0], None)
                try:
                    event = parse(record)
                except ParseError as exc:
                    stats.dead.append((origin, exc.reason))
                    continue
                if event is None:
                    stats.skipped += 1
                    continue
                if sequenced is not None:
                    gap = next_gap(last_seq, event, sequenced)
                    if gap is not None:
                        stats.events += 1
                        yield gap
                stats.events += 1
                yield event
            for record in opened.values() if pairing is not None else ():
                try:
                    event = pairing.parse_unanswered(record)  # type: ignore[union-attr]
                except ParseError:
                    continue
                if event is not None:
                    stats.events += 1
                    yield event
