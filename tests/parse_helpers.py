"""Parse a whole file the way the collector does, without Kafka: for conformance and golden tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ingest.framing import decode_bytes
from ingest.parsers import PAIRING, PARSERS, ParseError, RawRecord, framer_for
from ingest.schema import KeyEvent

# tests/fixtures/<directory> -> the source whose parser reads it
FIXTURE_SOURCES = {
    "cloudtrail": "aws.cloudtrail",
    "vault": "vault.audit",
    "gcp": "gcp.audit",
    "azure": "azure.keyvault",
    "cloudhsm": "aws.cloudhsm",
    "luna": "thales.luna",
}


@dataclass
class Parsed:
    events: list[KeyEvent] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # frame indexes
    dead: list[tuple[int, str]] = field(default_factory=list)  # (frame index, reason)
    unanswered: list[KeyEvent] = field(default_factory=list)  # paired sources: requests with no response
    open_requests: list[str] = field(default_factory=list)

    @property
    def counts(self) -> tuple[int, int, int]:
        return len(self.events), len(self.skipped), len(self.dead)


def parse_file(source: str, path: Path) -> Parsed:
    out = Parsed()
    pairing = PAIRING.get(source)
    opened: dict[str, RawRecord] = {}
    for frame in framer_for(source)(decode_bytes(path.read_bytes()).text):
        if frame.error:
            out.dead.append((frame.index, frame.error))
            continue
        record = RawRecord(frame.text, frame.obj, f"{path.name}#{frame.index}")
        if pairing is not None:
            pid = pairing.pair_id(frame.obj)
            if pid and pid[1] == "request":
                opened[pid[0]] = record
            elif pid:
                opened.pop(pid[0], None)
        try:
            event = PARSERS[source](record)
        except ParseError as exc:
            out.dead.append((frame.index, exc.reason))
            continue
        if event is None:
            out.skipped.append(frame.index)
        else:
            out.events.append(event)
    out.open_requests = list(opened)
    if pairing is not None:
        out.unanswered = [e for r in opened.values() if (e := pairing.parse_unanswered(r)) is not None]
    return out
