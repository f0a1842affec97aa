"""What every parser is: a pure function from one framed record to one KeyEvent.

A parser returns ``None`` for a record it recognises as its source's but not key-related (a
CloudTrail S3 event); the collector counts those as skipped. Anything it cannot understand raises
:class:`ParseError`, which names the source and the position, and the record goes to the
dead-letter topic. Any other exception escaping a parser is a bug (the fuzz tests look for them).
"""

from __future__ import annotations

import functools
import ipaddress
import math
from dataclasses import dataclass
from typing import Any, Protocol

from ingest.schema import KeyEvent, event_uid


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


class Pairing(Protocol):
    """For sources that log one operation as two entries (Vault: request, then response).

    The parser turns the second entry into the event; the collector uses these two functions to
    notice first entries whose second never came, so an attempt is never lost.
    """

    def pair_id(self, obj: Any) -> tuple[str, str] | None:
        """``(operation id, "request"|"response")`` or None for unpaired entries."""
        ...

    def parse_unanswered(self, record: RawRecord) -> KeyEvent | None:
        """The event for a request entry that never got its response."""
        ...


class Sequenced(Protocol):
    """For sources whose records carry a counter that must have no holes (CloudHSM)."""

    def sequence(self, event: KeyEvent) -> tuple[str, int, int] | None:
        """``(stream, epoch, number)``: numbers count up by one within a stream and epoch."""
        ...

    def gap_event(self, after: KeyEvent, expected: int, found: int) -> KeyEvent:
        """The event reporting that ``expected`` came next but ``found`` arrived."""
        ...


_INT64 = 2**63


def json_safe(value: Any, depth: int = 0) -> Any:
    """A copy of a parsed JSON value that any JSON encoder round-trips exactly: integers beyond 64
    bits and non-finite floats become strings, lone surrogates are replaced, deep nesting is cut.
    Parsers pass provider facts through this before putting them in ``KeyEvent.details``."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if -_INT64 <= value < _INT64 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8") if _has_surrogate(value) else value
    if depth >= 16:
        return str(type(value).__name__)
    if isinstance(value, list):
        return [json_safe(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {json_safe(str(k)): json_safe(v, depth + 1) for k, v in value.items()}
    return str(value)


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def text(value: Any) -> str | None:
    """``value`` if it is a non-empty string, else None: provider fields are often "" or missing."""
    return value if isinstance(value, str) and value else None


@functools.lru_cache(maxsize=65536)
def _ip_cached(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def ip_or_none(value: Any) -> str | None:
    """A canonical IP address, or None: caller-address fields also hold service names
    ("kms.amazonaws.com", "AWS Internal", "private"). Cached: addresses repeat constantly."""
    return _ip_cached(value) if isinstance(value, str) and len(value) <= 64 else None


def record_uid(
    source: str, record: RawRecord, provider_event_id: str | None, content: Any, *, identity: Any = None
) -> str:
    """:func:`ingest.schema.event_uid`, with a record that cannot be canonicalised refused as a
    ParseError (so it is dead-lettered with the reason instead of crashing the collector)."""
    try:
        return event_uid(source, provider_event_id, content, identity=identity)
    except ValueError as exc:
        raise ParseError(source, record.origin, str(exc)) from None
