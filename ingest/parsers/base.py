"""What every parser is: a pure function from one framed record to one KeyEvent.

A parser returns ``None`` for a record it recognises as its source's but not key-related (a
CloudTrail S3 event); the collector counts those as skipped. Anything it cannot understand raises
:class:`ParseError`, which names the source and the position, and the record goes to the
dead-letter topic. Any other exception escaping a parser is a bug (the fuzz tests look for them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ingest.schema import KeyEvent


@dataclass(slots=True, frozen=True)
class RawRecord:
    """One record as framed from an input."""

    text: str  # the verbatim record
    obj: Any  # the record parsed as JSON by the framer (None for text formats)
    origin: str  # input and position: "file:///x/y.json.gz#3", "s3://b/k.json.gz#12"


class ParseError(ValueError):
    """A record its parser cannot turn into an event. Carries where it came from."""

    def __init__(self, source: str, origin: str, reason: str) -> None:
        super().__init__(f"{source} record at {origin}: {reason}")
        self.source = source
        self.origin = origin
        self.reason = reason


class Parser(Protocol):
    """The shape of every ``ingest.parsers.<source>.parse``."""

    def __call__(self, record: RawRecord) -> KeyEvent | None: ...
