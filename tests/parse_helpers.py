"""Parse a whole file the way the collector does, without Kafka: for conformance and golden tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ingest.framing import decode_bytes
from ingest.offline import parse_text
from ingest.schema import KeyEvent
from streams.rules.testing import FIXTURE_SOURCES

__all__ = ["FIXTURE_SOURCES", "Parsed", "parse_file"]


@dataclass
class Parsed:
    events: list[KeyEvent] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # frame indexes
    dead: list[tuple[int, str]] = field(default_factory=list)  # (frame index, reason)
    unanswered: list[KeyEvent] = field(default_factory=list)  # paired sources: requests with no response
    gaps: list[KeyEvent] = field(default_factory=list)  # sequenced sources: derived sequence-gap events

    @property
    def counts(self) -> tuple[int, int, int]:
        return len(self.events), len(self.skipped), len(self.dead)


def parse_file(source: str, path: Path) -> Parsed:
    out = Parsed()
    for outcome in parse_text(source, decode_bytes(path.read_bytes()).text, path.name):
        if outcome.kind == "dead":
            out.dead.append((outcome.index, outcome.reason or ""))
        elif outcome.kind == "skipped":
            out.skipped.append(outcome.index)
        elif outcome.kind == "unanswered":
            out.unanswered.append(outcome.event)  # type: ignore[arg-type]
        elif outcome.kind == "gap":
            out.gaps.append(outcome.event)  # type: ignore[arg-type]
        elif outcome.event is not None:
            out.events.append(outcome.event)
    return out
