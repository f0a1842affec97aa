"""The events topic's message format (``kmo.events.v2``): one or more events per Kafka message.

Why batches: a Faust worker pays for every message it is handed (two asyncio tasks each in
faust-streaming 0.15.3, a ceiling of about 4,400 messages/s on these machines, bench/README.md),
and kafka-python builds and parses every record in pure Python. One event per message held the
whole pipeline to a tenth of what the parser can read. So a collector sends, per partition, one
message holding the events it produced since its last flush, and every reader splits it again.

The format is JSON lines: each event's OCSF JSON (exactly what :func:`ingest.schema.encode` makes)
on a line of its own, joined by ``\\n``. orjson never writes a raw newline inside a document (it
escapes control characters in strings), so splitting on newlines gives each event's own bytes back
without parsing: the worker forwards them and a bad line is dead-lettered alone, with its bytes.
A message of one event is byte for byte a ``kmo.events.v1`` message, and a single JSON document
that spans lines (pretty-printed by hand, say) is still read as one.

Every event in a message belongs to the same partition (the partition of its key uri, so one
key's events stay in order on one partition, as before); the message has no key.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from ingest.schema.codec import DecodeError, decode, decode_with_document
from ingest.schema.event import KeyEvent

SEPARATOR = b"\n"


def join_events(values: Iterable[bytes]) -> bytes:
    """One message from encoded events (each from :func:`ingest.schema.encode`, so newline-free)."""
    return SEPARATOR.join(values)


def split_events(value: bytes) -> list[bytes]:
    """Each event's bytes in one message, in order (blank lines, a trailing newline, are ignored)."""
    if SEPARATOR not in value:
        return [value]
    return [line for line in value.split(SEPARATOR) if line.strip()]


def decode_message(
    value: bytes, *, drop_raw_data: bool = False
) -> tuple[list[KeyEvent], list[bytes], list[DecodeError]]:
    """``(events, each event's bytes, the lines that are not events)`` for one message: readers
    keep what they can read and dead-letter the rest line by line, each error holding its bytes.

    ``drop_raw_data``: each event's bytes come back re-encoded without ``raw_data`` (the provider's
    record, more than half an event's bytes), for a reader that passes events on to a consumer that
    never reads it (the worker's principal stream: streams.forwarding). The events returned keep it."""
    events: list[KeyEvent] = []
    raws: list[bytes] = []
    bad: list[DecodeError] = []
    lines = split_events(value)
    for number, line in enumerate(lines, 1):
        try:
            if drop_raw_data:
                event, doc = decode_with_document(line)
                doc.pop("raw_data", None)
                events.append(event)
                raws.append(orjson.dumps(doc))
                continue
            events.append(decode(line))
            raws.append(line)
        except DecodeError as exc:
            if number == 1 and len(lines) > 1 and exc.reason.startswith("not JSON"):
                whole = _one_document(value)  # not JSON lines: one document over several lines?
                if whole is not None:
                    return [whole], [value], []
            if len(lines) > 1:
                exc = DecodeError(f"event {number} of {len(lines)} in the message: {exc.reason}", line)
            bad.append(exc)
    if not lines:
        bad.append(DecodeError("an empty message", value))
    return events, raws, bad


def _one_document(value: bytes) -> KeyEvent | None:
    try:
        return decode(value)
    except DecodeError:
        return None


def decode_events(value: bytes) -> list[KeyEvent]:
    """Every event in one message, for readers that want all or nothing (tests, tools).

    Raises:
        DecodeError: for the first line that is not a kmo event.
    """
    events, _, bad = decode_message(value)
    if bad:
        raise bad[0]
    return events
