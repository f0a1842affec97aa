"""Read audit-log files into events without Kafka (``kmo detect``, conformance tests): the same
framing, parsers, request pairing and sequence-gap checks as the collector, every record accounted
for as an event, a skip, or a dead letter with its reason."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ingest.collectors.inputs import InputError, local_inputs
from ingest.framing import decode_bytes
from ingest.parsers import PAIRING, PARSERS, SEQUENCED, ParseError, RawRecord, framer_for
from ingest.runner import next_gap
from ingest.schema import KeyEvent


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one frame (or, for ``unanswered`` and ``gap``, what was derived)."""

    kind: Literal["event", "skipped", "dead", "unanswered", "gap"]
    index: int  # frame index within the input (-1 for derived events)
    event: KeyEvent | None = None
    reason: str | None = None


def parse_text(
    source: str, text: str, name: str, last_seq: dict[tuple[str, int], int] | None = None
) -> Iterator[Outcome]:
    """Every outcome for one input's decoded text, in order; unanswered requests come last."""
    parse = PARSERS[source]
    pairing = PAIRING.get(source)
    sequenced = SEQUENCED.get(source)
    last_seq = {} if last_seq is None else last_seq
    opened: dict[str, RawRecord] = {}
    for frame in framer_for(source)(text):
        origin = f"{name}#{frame.index}"
        if frame.error is not None:
            yield Outcome("dead", frame.index, reason=frame.error)
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
            yield Outcome("dead", frame.index, reason=exc.reason)
            continue
        if event is None:
            yield Outcome("skipped", frame.index)
            continue
        if sequenced is not None:
            gap = next_gap(last_seq, event, sequenced)
            if gap is not None:
                yield Outcome("gap", -1, gap)
        yield Outcome("event", frame.index, event)
    for record in opened.values() if pairing is not None else ():
        try:
            event = pairing.parse_unanswered(record)  # type: ignore[union-attr]
        except ParseError:
            continue
        if event is not None:
            yield Outcome("unanswered", -1, event)


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
    last_seq: dict[tuple[str, int], int] = {}
    for location in locations:
        try:
            inputs = list(local_inputs(location))
        except InputError as exc:
            stats.unreadable.append((exc.name, exc.reason))
            continue
        for inp in inputs:
            try:
                text = decode_bytes(inp.read_bytes()).text
            except InputError as exc:
                stats.unreadable.append((exc.name, exc.reason))
                continue
            for outcome in parse_text(source, text, inp.name, last_seq):
                if outcome.index >= 0:
                    stats.records += 1
                if outcome.kind == "dead":
                    stats.dead.append((f"{inp.name}#{outcome.index}", outcome.reason or ""))
                elif outcome.kind == "skipped":
                    stats.skipped += 1
                elif outcome.event is not None:
                    stats.events += 1
                    yield outcome.event
