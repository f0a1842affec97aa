"""The events topic's messages (ingest.schema.batch): several events a message, each read back with
its own bytes, a bad line dead-lettered alone, a one-event message exactly what v1 carried; and the
collector's batcher: one message per partition, in order, under its caps."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from ingest.batching import EventBatcher
from ingest.schema import DecodeError, encode
from ingest.schema.batch import decode_events, decode_message, join_events, split_events
from tests.unit.test_schema import sample


def events(n: int) -> list:
    return [sample(uid=f"aws.cloudtrail:e{i}:{i:016x}") for i in range(n)]


def test_a_message_of_several_events_reads_back_each_with_its_own_bytes() -> None:
    evs = events(3)
    raws = [encode(e) for e in evs]
    got, lines, bad = decode_message(join_events(raws))
    assert got == evs and lines == raws and bad == []


def test_a_one_event_message_is_a_v1_message() -> None:
    event = sample()
    assert join_events([encode(event)]) == encode(event)
    assert decode_events(encode(event)) == [event]


def test_newlines_inside_values_never_split_an_event() -> None:
    event = sample(uid="aws.cloudtrail:nl:0000000000000001", error_message="line one\nline two\r\n")
    raw = encode(event)
    assert b"\n" not in raw  # orjson escapes it: the separator is safe
    assert decode_events(join_events([raw, raw])) == [event, event]


def test_a_bad_line_is_dead_lettered_alone_with_its_bytes_and_place() -> None:
    good = events(2)
    value = encode(good[0]) + b"\n{not json\n" + encode(good[1])
    got, _, bad = decode_message(value)
    assert got == good
    assert [e.raw for e in bad] == [b"{not json"]
    assert bad[0].reason.startswith("event 2 of 3 in the message: not JSON")
    with pytest.raises(DecodeError):
        decode_events(value)


def test_a_document_over_several_lines_is_read_as_one() -> None:
    event = sample()
    pretty = orjson.dumps(orjson.loads(encode(event)), option=orjson.OPT_INDENT_2)
    assert b"\n" in pretty
    assert decode_events(pretty) == [event]


def test_junk_and_empty_messages_are_errors_not_silence() -> None:
    for value in (b"", b"\n\n", b"\xff not an event", b"not\njson\nat all"):
        got, _, bad = decode_message(value)
        assert got == [] and bad, value
        assert all(isinstance(e.raw, bytes) for e in bad)


def test_blank_lines_and_a_trailing_newline_are_ignored() -> None:
    raws = [encode(e) for e in events(2)]
    assert split_events(raws[0] + b"\n\n" + raws[1] + b"\n") == raws


def test_the_batcher_sends_one_message_per_partition_in_order_under_its_caps() -> None:
    sent: list[tuple[int, bytes, list]] = []
    batcher = EventBatcher(lambda p, v, tags: sent.append((p, v, tags)), max_events=3, max_bytes=10_000)
    raws = [encode(e) for e in events(8)]
    for i, raw in enumerate(raws):
        batcher.add(i % 2, raw, tag=i)
    assert [(p, tags) for p, _, tags in sent] == [(0, [0, 2, 4]), (1, [1, 3, 5])]  # full at 3 events
    assert batcher.held == 2
    batcher.flush()
    assert batcher.held == 0
    assert [(p, tags) for p, _, tags in sent[2:]] == [(0, [6]), (1, [7])]
    by_partition: dict[int, list[bytes]] = {}
    for p, value, _ in sent:
        by_partition.setdefault(p, []).extend(split_events(value))
    assert by_partition == {0: raws[0::2], 1: raws[1::2]}


def test_the_batcher_cuts_by_bytes_and_sends_an_oversized_event_alone() -> None:
    sent: list[bytes] = []
    raw = encode(sample())
    batcher = EventBatcher(lambda p, v, tags: sent.append(v), max_events=100, max_bytes=3 * len(raw) + 3)
    batcher.add(0, raw)
    batcher.add(0, raw)
    big = encode(sample(uid="aws.cloudtrail:big:0000000000000001", error_message="x" * (4 * len(raw))))
    batcher.add(0, big)  # too large to join: the two held go first, then it alone
    assert [len(split_events(v)) for v in sent] == [2, 1] and sent[1] == big
    for _ in range(4):
        batcher.add(0, raw)
    assert [len(split_events(v)) for v in sent[2:]] == [3]  # the byte cap reached at three
    assert all(len(v) <= 3 * len(raw) + 3 for v in sent if v != big)


def test_the_worker_can_pass_events_on_without_the_providers_record() -> None:
    kept = [sample(uid=f"aws.cloudtrail:r{i}:{i:016x}", raw=f'{{"eventName": "Decrypt", "n": {i}}}') for i in range(2)]
    got, lines, bad = decode_message(join_events([encode(e) for e in kept]), drop_raw_data=True)
    assert got == kept and not bad  # the events decoded keep it ...
    assert all(b"raw_data" not in line for line in lines)  # ... the bytes passed on do not
    forwarded = decode_events(join_events(lines))
    assert [e.raw for e in forwarded] == ["", ""]
    assert [dataclasses.replace(e, raw=k.raw) for e, k in zip(forwarded, kept, strict=True)] == kept
