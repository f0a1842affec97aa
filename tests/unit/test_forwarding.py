"""Forwarded batches: one principal's events on the partition the producer's partitioner gives its
key (where the worker keeps the principal table's entries), in order, under the size cap, read back whole."""

from __future__ import annotations

import dataclasses

import pytest
from aiokafka.partitioner import DefaultPartitioner

from ingest.schema import DecodeError, encode
from streams import forwarding
from streams.forwarding import decode_forwarded, forward_batches, partition_for, principal_key
from tests.unit.test_schema import sample


def events_of(principals: list[str | None]) -> list:
    return [
        sample(uid=f"aws.cloudtrail:e{i}:{i:016x}", actor=dataclasses.replace(sample().actor, principal=p))
        for i, p in enumerate(principals)
    ]


def test_partition_matches_the_producers_partitioner() -> None:
    faust_producer = DefaultPartitioner()  # what the worker's (aiokafka's) producer places keyed records with
    for name in ["arn:aws:iam::111111111111:role/app", "alice@example.com", "unknown", "", "vault:entity/x"]:
        key = name.encode()
        assert partition_for(key, 6) == faust_producer(key, list(range(6)), list(range(6)))


def test_each_event_goes_once_to_its_principals_partition_in_order() -> None:
    events = events_of(["arn:aws:iam::1:role/a", "arn:aws:iam::1:role/b", None, "arn:aws:iam::1:role/a"] * 5)
    raws = [encode(e) for e in events]
    batches = forward_batches(events, raws, 6)
    seen = []
    for partition, value in batches:
        got, bad = decode_forwarded(value)
        assert not bad
        assert all(partition_for(principal_key(e), 6) == partition for e in got)
        seen += [e.uid for e in got]
    assert sorted(seen) == sorted(e.uid for e in events)
    for _, value in batches:  # arrival order kept within a partition
        uids = [e.uid for e in decode_forwarded(value)[0]]
        assert uids == [e.uid for e in events if e.uid in uids]
    assert decode_forwarded(batches[0][1])[0][0] == next(e for e in events if e.uid == seen[0])


def test_batches_are_cut_under_the_size_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    events = events_of(["arn:aws:iam::1:role/a"] * 30)
    raws = [encode(e) for e in events]
    monkeypatch.setattr(forwarding, "MAX_FORWARD_BYTES", 5 * len(raws[0]))
    batches = forward_batches(events, raws, 3)
    assert len(batches) > 1
    assert all(len(v) <= 5 * len(raws[0]) for _, v in batches)
    assert [e.uid for _, v in batches for e in decode_forwarded(v)[0]] == [e.uid for e in events]


def test_what_older_workers_forwarded_is_still_read() -> None:
    events = events_of(["arn:aws:iam::1:role/a", "arn:aws:iam::1:role/b"])
    assert decode_forwarded(encode(events[0])) == ([events[0]], [])  # one event
    array = b"[" + b",".join(encode(e) for e in events) + b"]"  # a JSON array of events
    assert decode_forwarded(array) == (events, [])


def test_a_bad_line_is_set_apart_and_the_rest_kept() -> None:
    events = events_of(["arn:aws:iam::1:role/a", "arn:aws:iam::1:role/b"])
    got, bad = decode_forwarded(encode(events[0]) + b"\n{oops\n" + encode(events[1]))
    assert got == events and [e.raw for e in bad] == [b"{oops"]


@pytest.mark.parametrize("value", [b"not json", b'[{"class_uid": 1}]', b"[1, 2]", b'"text"'])
def test_what_is_not_a_batch_of_events_is_a_decode_error_with_the_bytes(value: bytes) -> None:
    events, bad = decode_forwarded(value)
    assert events == [] and [e.raw for e in bad] == [value]
    assert all(isinstance(e, DecodeError) for e in bad)
