"""Split an input's bytes into records, keeping each record's exact original text.

Audit logs arrive as JSON containers (CloudTrail's ``{"Records":[...]}``, Azure's
``{"records":[...]}``), JSON Lines, or concatenated pretty-printed objects. A record's verbatim
text is evidence, so framing uses ``JSONDecoder.raw_decode``, which returns where each value ends,
instead of re-serialising parsed objects.

Bad input never raises out of here: a stretch that cannot be framed becomes a :class:`Frame` whose
``error`` says why and whose ``raw`` holds the bytes, so the caller can dead-letter it. Invalid UTF-8
is carried through with ``surrogateescape`` and flagged per record, so one bad byte costs one record,
not the file.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")
# Fast path: nearly every container file starts with its record array.
_CONTAINER_HEAD = re.compile(r'\{\s*"(Records|records)"\s*:\s*\[')
# CloudTrail, Azure (Event Hubs) and CloudWatch Logs subscription payloads wrap records in these keys
_CONTAINER_KEYS = frozenset({"Records", "records", "logEvents"})


@dataclass(slots=True)
class Frame:
    """One record (or one unframeable stretch) of an input."""

    index: int  # 0-based position among the input's frames
    offset: int  # character offset in the decoded text where the record starts
    text: str  # the record's verbatim text (may hold surrogate escapes for invalid UTF-8)
    obj: Any = None  # the parsed JSON value, when it parsed
    error: str | None = None  # why this stretch is not a record

    @property
    def raw(self) -> bytes:
        """The record's original bytes, exactly as read (invalid UTF-8 included)."""
        return self.text.encode("utf-8", "surrogateescape")


@dataclass(slots=True)
class Decoded:
    """An input's bytes decompressed and decoded, with what went wrong on the way."""

    text: str
    problem: str | None = None  # e.g. "truncated gzip stream": the text is the readable prefix
    tail: bytes = b""  # bytes that could not be decompressed, kept for the dead-letter topic


def decode_bytes(data: bytes) -> Decoded:
    """Decompress gzip (by magic number, not file name) and decode UTF-8 losslessly.

    A truncated or corrupt gzip stream yields the readable prefix plus a ``problem``, and the
    undecompressable remainder in ``tail``; concatenated gzip members are all read.
    """
    problem = None
    tail = b""
    if data[:2] == b"\x1f\x8b":
        chunks: list[bytes] = []
        rest = data
        while rest:
            d = zlib.decompressobj(wbits=31)
            try:
                chunks.append(d.decompress(rest))
                chunks.append(d.flush())
            except zlib.error as exc:
                problem = f"corrupt gzip stream: {exc}"
                tail = rest
                break
            if not d.eof:
                problem = "truncated gzip stream (the file ends before the compressed data does)"
                break
            rest = d.unused_data
            if rest and rest[:2] != b"\x1f\x8b":
                problem = "trailing bytes after the gzip stream"
                tail = rest
                break
        data = b"".join(chunks)
    if data[:3] == b"\xef\xbb\xbf":  # UTF-8 BOM: some exporters write one
        data = data[3:]
    return Decoded(data.decode("utf-8", "surrogateescape"), problem, tail)


def _has_invalid_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _why(exc: ValueError, what: str) -> str:
    """A decode failure in words. Not only JSONDecodeError: the decoder also raises plain ValueError,
    e.g. for integers longer than Python's 4300-digit conversion limit."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{what}: {exc.msg} at char {exc.pos}"
    return f"{what}: {str(exc)[:200]}"


def _skip_ws(text: str, pos: int) -> int:
    m = _WS.match(text, pos)
    return m.end() if m else pos


class _FramingError(Exception):
    def __init__(self, pos: int, reason: str) -> None:
        super().__init__(reason)
        self.pos = pos
        self.reason = reason


def frame_records(text: str) -> Iterator[Frame]:
    """Yield every record in ``text``: container elements, bare arrays, JSON Lines, or concatenated objects.

    Framing stops at the first stretch of a container that is not valid JSON and yields the rest of
    the text as one error frame (past that point record boundaries cannot be trusted). In a
    sequence of top-level values (JSON Lines) it resynchronises at the next line instead.
    """
    index = 0
    pos = _skip_ws(text, 0)
    n = len(text)
    while pos < n:
        head = _CONTAINER_HEAD.match(text, pos)
        if head or text[pos] == "[":
            # {"Records":[...]} / {"records":[...]}, or a bare array (Log Analytics and API exports)
            array_end: list[int] = []
            consumed = pos  # end of the last record framed: everything after it is unaccounted for
            try:
                for frame in _frame_array(text, head.end() - 1 if head else pos, index, array_end):
                    index += 1
                    consumed = frame.offset + len(frame.text)
                    yield frame
                pos = _close_container(text, _skip_ws(text, array_end[0])) if head else array_end[0]
            except _FramingError as exc:
                # Dead-letter every byte not inside a framed record, so nothing read is lost.
                start = consumed if consumed > pos or exc.pos >= len(text) else exc.pos
                yield Frame(index, start, text[start:], error=exc.reason)
                return
            pos = _skip_ws(text, pos)
            continue
        try:
            obj, end = _DECODER.raw_decode(text, pos)
        except RecursionError:
            nxt = text.find("\n{", pos + 1)
            stop = n if nxt < 0 else nxt + 1
            yield Frame(index, pos, text[pos:stop], error="value nested too deeply to parse")
            index += 1
            pos = _skip_ws(text, stop)
            continue
        except ValueError as exc:
            # Resynchronise where the next top-level object starts: in JSON Lines and in jq-style
            # concatenated output every record opens with '{' at the start of a line.
            nxt = text.find("\n{", pos + 1)
            stop = n if nxt < 0 else nxt + 1
            yield Frame(index, pos, text[pos:stop], error=_why(exc, "not valid JSON"))
            index += 1
            pos = _skip_ws(text, stop)
            continue
        if isinstance(obj, dict) and any(isinstance(obj.get(k), list) for k in _CONTAINER_KEYS):
            # A container whose record array is not its first key: walk it to recover spans.
            try:
                frames = list(_walk_object(text, pos, index))
            except _FramingError as exc:  # cannot happen for text raw_decode accepted; be safe
                yield Frame(index, exc.pos, text[exc.pos : end], error=exc.reason)
                index += 1
                pos = _skip_ws(text, end)
                continue
            for frame in frames:
                yield frame
            index += len(frames)
        else:
            yield _record_frame(index, pos, text[pos:end], obj)
            index += 1
        pos = _skip_ws(text, end)


def _record_frame(index: int, pos: int, span: str, obj: Any) -> Frame:
    if _has_invalid_utf8(span):
        return Frame(index, pos, span, obj, error="record contains bytes that are not valid UTF-8")
    return Frame(index, pos, span, obj)


def _frame_array(text: str, pos: int, first_index: int, end_out: list[int]) -> Iterator[Frame]:
    """Frame the elements of the JSON array at ``text[pos] == '['``; append its end to ``end_out``."""
    index = first_index
    i = _skip_ws(text, pos + 1)
    if i < len(text) and text[i] == "]":
        end_out.append(i + 1)
        return
    while True:
        try:
            obj, end = _DECODER.raw_decode(text, i)
        except ValueError as exc:
            raise _FramingError(i, _why(exc, "malformed record array")) from None
        except RecursionError:
            raise _FramingError(i, "record nested too deeply to parse") from None
        yield _record_frame(index, i, text[i:end], obj)
        index += 1
        i = _skip_ws(text, end)
        if i >= len(text):
            raise _FramingError(min(i, len(text)), "input ends inside the record array (truncated file?)")
        if text[i] == ",":
            i = _skip_ws(text, i + 1)
            continue
        if text[i] == "]":
            end_out.append(i + 1)
            return
        raise _FramingError(i, f"expected ',' or ']' in the record array at char {i}")


def _close_container(text: str, i: int) -> int:
    """Skip any keys after the record array and the closing brace; return the end position."""
    while i < len(text) and text[i] == ",":
        i = _skip_ws(text, i + 1)
        try:
            _key, i = _DECODER.raw_decode(text, i)
            i = _skip_ws(text, i)
            if text[i : i + 1] != ":":
                raise _FramingError(i, f"expected ':' at char {i}")
            _value, i = _DECODER.raw_decode(text, _skip_ws(text, i + 1))
        except ValueError as exc:
            raise _FramingError(i, _why(exc, "malformed container")) from None
        i = _skip_ws(text, i)
    if text[i : i + 1] != "}":
        raise _FramingError(i, f"expected '}}' closing the container at char {i}")
    return i + 1


def _walk_object(text: str, pos: int, first_index: int) -> Iterator[Frame]:
    """Frame the record array of a container object whose keys come in any order."""
    i = _skip_ws(text, pos + 1)
    index = first_index
    while i < len(text) and text[i] != "}":
        try:
            key, i = _DECODER.raw_decode(text, i)
            i = _skip_ws(text, i)
            i = _skip_ws(text, i + 1)  # the ':'
            if key in _CONTAINER_KEYS and text[i] == "[":
                array_end: list[int] = []
                frames = list(_frame_array(text, i, index, array_end))
                yield from frames
                index += len(frames)
                i = array_end[0]
            else:
                _value, i = _DECODER.raw_decode(text, i)
        except ValueError as exc:
            raise _FramingError(i, _why(exc, "malformed container")) from None
        except RecursionError:
            raise _FramingError(i, "container nested too deeply to parse") from None
        i = _skip_ws(text, i)
        if text[i : i + 1] == ",":
            i = _skip_ws(text, i + 1)


_BLANK_LINES = re.compile(r"\n[ \t\r]*\n")


def frame_text_blocks(text: str) -> Iterator[Frame]:
    """Frame text logs whose records are separated by blank lines (CloudHSM, Luna exports).

    JSON input (a CloudWatch Logs subscription payload or ``filter-log-events`` output) is framed
    as JSON instead, so the same source reads both its native text and its CloudWatch wrappings.
    """
    start = _skip_ws(text, 0)
    if start < len(text) and text[start] in "{[":
        yield from frame_records(text)
        return
    index = 0
    pos = start
    for m in _BLANK_LINES.finditer(text, start):
        block = text[pos : m.start()].rstrip()
        if block.strip():
            yield _text_frame(index, pos, block)
            index += 1
        pos = m.end()
    block = text[pos:].rstrip()
    if block.strip():
        yield _text_frame(index, pos, block)


def frame_lines(text: str) -> Iterator[Frame]:
    """Frame line-oriented text logs (one record per line); JSON input is framed as JSON."""
    start = _skip_ws(text, 0)
    if start < len(text) and text[start] in "{[":
        yield from frame_records(text)
        return
    index = 0
    offset = 0
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\r\n")
        if stripped.strip():
            yield _text_frame(index, offset, stripped)
            index += 1
        offset += len(line)


def _text_frame(index: int, pos: int, block: str) -> Frame:
    if _has_invalid_utf8(block):
        return Frame(index, pos, block, error="record contains bytes that are not valid UTF-8")
    return Frame(index, pos, block)
