"""Bytes <-> KeyEvent. Decoding errors are ours to route (to a dead-letter topic), not Faust's.

Faust's default for an undecodable message is to log it and commit past it; kmo topics are read
as raw bytes and decoded here, so every failure becomes a :class:`DecodeError` that still holds
the original bytes.
"""

from __future__ import annotations

from typing import Any

import orjson

from ingest.schema.event import KeyEvent


class DecodeError(ValueError):
    """A message on an events topic that is not a valid KeyEvent. Keeps the raw bytes."""

    def __init__(self, reason: str, raw: bytes) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


class EncodeError(ValueError):
    """An event holding a value JSON cannot carry faithfully (a lone surrogate, an integer beyond 64
    bits). The collector dead-letters its record instead of sending something lossy."""


def encode(event: KeyEvent) -> bytes:
    """Serialise an event to its OCSF JSON wire form.

    Raises:
        EncodeError: when a field holds a value JSON cannot carry (see :class:`EncodeError`).
    """
    try:
        return orjson.dumps(event.to_ocsf())
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise EncodeError(f"event cannot be encoded: {exc}") from None


def decode(raw: bytes) -> KeyEvent:
    """Parse OCSF JSON bytes into a KeyEvent.

    Raises:
        DecodeError: for invalid JSON, a non-object, or a missing or ill-typed required field.
    """
    return decode_with_document(raw)[0]


def decode_with_document(raw: bytes) -> tuple[KeyEvent, dict[str, Any]]:
    """:func:`decode`, also returning the parsed JSON document (for a reader that re-encodes part of it).

    Raises:
        DecodeError: as :func:`decode`.
    """
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}", raw) from exc
    if not isinstance(doc, dict):
        raise DecodeError(f"not a JSON object: {type(doc).__name__}", raw)
    try:
        return KeyEvent.from_ocsf(doc), doc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DecodeError(f"not a kmo event: {type(exc).__name__}: {exc}", raw) from exc
