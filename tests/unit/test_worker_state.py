"""The worker's table state (streams.worker.TableBuckets) against a commit that lands half-way through
a batch: what a commit writes must be exactly what its offsets cover, so that a crash after it and
the batch processed again leave the same state as no crash at all (the chaos run once caught a
finding counted twice this way)."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.offline import read_events
from kmo.demo.cloudtrail_files import render_files, write_files
from kmo.demo.estate import Estate
from streams.engine import Engine
from streams.inventory import Inventory
from streams.policy import load_policy
from streams.rules import load_rules
from streams.table_state import FlushStateOnCommit, TableBuckets


class Changelog(dict):  # type: ignore[type-arg]
    """A table whose contents are what its changelog holds: written only by assignment."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes += 1
        super().__setitem__(key, value)


def key_engine(state: TableBuckets) -> Engine:
    return Engine(
        load_rules(),
        policy=load_policy(),
        inventory=Inventory(),
        scopes=frozenset({"event", "key", "absence"}),
        state=lambda scope, bucket: state.store(bucket),
    )


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory) -> list[list[Any]]:
    root = tmp_path_factory.mktemp("estate")
    write_files(root, render_files(Estate(seed=7, days=3, keys_per_account=6).generate()))
    events = list(read_events("aws.cloudtrail", [str(root)]))
    assert len(events) > 2000
    return [events[i : i + 250] for i in range(0, len(events), 250)]


def run(batches: list[list[Any]], table: Changelog, *, commit_mid_batch: int | None = None) -> Changelog:
    """The worker's by-key agent over ``batches``: begin, process, (maybe a commit while the batch
    is still under way, then a crash: a copy of the table as committed), end; a commit after every
    batch. Returns the table as committed."""
    state = TableBuckets(table)
    engine = key_engine(state)
    commit = FlushStateOnCommit(state).on_commit_initiated
    for n, batch in enumerate(batches):
        state.begin_batch()
        engine.process(batch)
        if n == commit_mid_batch:
            commit(None)
            recovered = Changelog()
            recovered.update(table)  # what a restarted worker reads back (not a write)
            return recovered
        state.end_batch()
        commit(None)
    return table


def batch(state: TableBuckets, **counts: int) -> None:
    """One whole batch that sets ``n`` in each named bucket."""
    state.begin_batch()
    for bucket, n in counts.items():
        state.store(bucket)["n"] = n
    state.end_batch()


def test_a_crash_after_a_commit_mid_batch_leaves_the_state_of_no_crash(batches: list[list[Any]]) -> None:
    straight = run(batches, Changelog())
    middle = len(batches) // 2
    # a commit while batch `middle` is under way, then a crash: the batch's offsets were not
    # acked, so the restarted worker reads the table back and processes that batch again
    recovered = run(batches, Changelog(), commit_mid_batch=middle)
    again = run(batches[middle:], recovered)
    assert again.keys() == straight.keys()
    differing = sorted(k for k in straight if straight[k] != again[k])
    assert differing == [], f"{len(differing)} buckets differ, e.g. {differing[:3]}"


def test_a_commit_mid_batch_writes_the_last_batch_end_not_the_batch_under_way() -> None:
    table = Changelog()
    state = TableBuckets(table)
    batch(state, k1=1)
    state.begin_batch()
    state.store("k1")["n"] = 2  # under way
    state.store("k2")["n"] = 1
    assert state.flush() == 1
    assert table == {"k1": {"n": 1}}
    assert state.store("k1").get("n") == 2, "the batch under way still sees its own changes"
    state.end_batch()
    assert state.flush() == 2 and table == {"k1": {"n": 2}, "k2": {"n": 1}}
    assert state.flush() == 0 and table.writes == 3


def test_sealed_state_is_read_back_before_it_is_written() -> None:
    table = Changelog()
    state = TableBuckets(table)
    batch(state, k1=1)
    state.flush()
    state.begin_batch()
    state.store("k1")["n"] = 2
    state.store(None)["last-use|k3"] = 5.0  # the absence rules' view: the entry's key names its bucket
    state.end_batch()  # drops the cache (the table had caught up before this batch): the seal is read
    assert table == {"k1": {"n": 1}}
    assert state.store("k1").get("n") == 2
    assert "last-use|k3" in set(state.store(None).keys()), "a bucket only sealed so far is still listed"
    assert state.pending == 2


def test_a_seal_is_a_snapshot() -> None:
    table = Changelog()
    state = TableBuckets(table)
    state.begin_batch()
    members = ["a"]
    state.store("k1")["m"] = members
    state.end_batch()
    members.append("b")  # changed in place after the batch ended: not what the batch left
    state.flush()
    assert table == {"k1": {"m": ["a"]}}


def test_a_buckets_entry_sits_on_the_partition_of_its_events() -> None:
    """The collector's producer (kafka-python) puts a key's events on murmur2(key); the worker that
    owns that partition must own the key's table entry, or a rebalance parts them."""
    from types import SimpleNamespace

    import faust
    from kafka.partitioner.default import DefaultPartitioner

    from streams.table_state import ColocatedTable

    app = faust.App("kmo-test-placement", broker="kafka://127.0.0.1:1", store="memory://", Table=ColocatedTable)
    table = app.Table("detect-by-key", default=None, partitions=6, use_partitioner=True)
    assert isinstance(table, ColocatedTable)
    sent: list[tuple[int | None, str]] = []

    def send_changelog(partition: int | None, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append((partition, key))
        return SimpleNamespace(message=SimpleNamespace(partition=partition))

    table.send_changelog = send_changelog  # type: ignore[method-assign]
    keys = ["arn:aws:kms:eu-west-1:111111111111:key/4ef8aa38-9227-4658-9e27-a1c08a6a63ec", "vault:transit/keys/p", "x"]
    for key in keys:
        table[key] = {"n": 1}  # Faust's own set path, as TableBuckets.flush writes
    six = set(range(6))
    cluster = SimpleNamespace(
        topics=lambda: {"events"}, partitions_for_topic=lambda t: six, available_partitions_for_topic=lambda t: six
    )

    def collector_partition(key: bytes) -> int:  # kafka-python's producer, as the collectors produce with
        return DefaultPartitioner().partition("events", key, key, None, None, cluster)

    expected = [(collector_partition(k.encode()), k) for k in keys]
    assert sent == expected
    # what Faust's use_partitioner did instead: hash the key as serialized (JSON, quoted), elsewhere
    assert any(collector_partition(f'"{k}"'.encode()) != p for p, k in expected)
