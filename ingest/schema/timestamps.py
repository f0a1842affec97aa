"""Timestamp parsing for audit logs, strict about what it accepts and always returning UTC.

Providers disagree: CloudTrail writes ``2023-07-10T11:57:49Z``, GCP nanoseconds, exporters
(Panther) ``2025-03-05 21:19:44.000000000`` with no zone. Python's ``fromisoformat`` takes at
most six fractional digits, so longer fractions are truncated (never rounded, so an event never
moves into the next second).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


class TimestampError(ValueError):
    """A timestamp that is not ISO 8601 / RFC 3339."""


def parse_timestamp(value: object) -> datetime:
    """Parse an ISO 8601 timestamp; a timestamp without an offset is taken as UTC.

    Raises:
        TimestampError: when ``value`` is not a string holding an ISO 8601 date-time.
    """
    if not isinstance(value, str) or len(value) < 10 or len(value) > 64:
        raise TimestampError(f"not a timestamp: {str(value)[:64]!r}")
    text = _LONG_FRACTION.sub(r"\1", value.strip())
    try:
        ts = datetime.fromisoformat(text)
    except ValueError as exc:
        raise TimestampError(f"not an ISO 8601 timestamp: {value[:64]!r}") from exc
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


def format_timestamp(ts: datetime) -> str:
    """RFC 3339 in UTC with microseconds and a ``Z``: one spelling everywhere kmo writes time."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
