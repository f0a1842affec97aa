"""The worker's state in Faust tables: where each entry lives, and when it is written.

* :class:`ColocatedTable` puts each entry on the partition of the events it belongs to.
* :class:`TableBuckets` gives the engine its (scope, bucket) stores over a table, sealing each
  batch's changes at the batch's end.
* :class:`FlushStateOnCommit` writes what is sealed when Faust is about to commit offsets.

Together: what a commit writes is exactly the state of the events its offsets cover, and the
worker that owns a key's events owns its state.
"""

from __future__ import annotations

from typing import Any

import faust
import orjson

from streams.forwarding import partition_for

ABSENCE_BUCKET = "kmo:absence-findings"


class ColocatedTable(faust.Table):  # type: ignore[misc]
    """A table whose entry for a bucket sits on the partition that carries the bucket's events.

    Why: a worker owns the table partitions numbered like the stream partitions it is assigned,
    and after each rebalance Faust's memory store drops every entry of a partition it does not
    own. A bucket is named by its events' Kafka key (a key uri; a principal on the forwarded
    topic), so its entry belongs on ``murmur2(key) mod n``, where the producers put those events.
    Faust's own ``use_partitioner`` hashes the key as the table serializes it (JSON, in quotes), a
    different partition: with two workers a key's state could live on the one that does not see
    its events. Placing entries here also needs no producer metadata, which is missing for a moment
    after a broker restart (a write at commit then crashed the worker: the chaos run saw it).
    """

    def partition_for_key(self, key: Any) -> int:
        return partition_for(str(key).encode(), self.partitions)


class TableBuckets:
    """Adapts a Faust table to the engine's (scope, bucket) stores: one table entry (a dict) per
    bucket. Changes are kept in memory, sealed at each batch's end (:meth:`end_batch`) and written
    to the table when Faust is about to commit offsets (:class:`FlushStateOnCommit`), not after
    every batch.

    Why at commit: every table write is a changelog record sent through Faust's producer buffer
    one at a time. Written after each batch, that was one record per bucket per batch (0.8 per
    event in small batches): at 1,000 events/s the buffer filled, Faust suspended the streams until
    it drained, and findings came seconds late (bench/README.md). Written at commit, it is at most
    one record per bucket per commit interval.

    Why sealed: a commit runs in its own task, and can start while a batch is suspended half-way
    (awaiting a send). Faust commits only offsets it has acked, and it acks a batch's events only
    after the agent's body ends; state written at that moment would hold the effects of events
    whose offsets are not committed, and after a crash they would be processed, and counted, a
    second time (the chaos run caught it). So a commit writes the state as of the last batch end,
    a snapshot taken by :meth:`end_batch`, which the agent calls last, with no await between it and
    Faust's acks: what is written is exactly what the committed offsets cover. Faust flushes its
    producer after the sensor and before it commits, so offsets never run ahead of state either.
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        self._cache: dict[str, dict[str, Any]] = {}  # buckets in use, with this batch's changes
        self._dirty: set[str] = set()  # changed since the last seal
        self._sealed: dict[str, bytes] = {}  # state as of the last batch end, not yet in the table
        self._flushed = False  # the table has caught up with the cache: drop the cache at the next seal
        self.busy = False  # a batch is under way

    def store(self, bucket: str | None) -> Any:
        return _AllBuckets(self) if bucket is None else _Bucket(self, bucket)

    def load(self, bucket: str) -> dict[str, Any]:
        if bucket not in self._cache:
            sealed = self._sealed.get(bucket)
            self._cache[bucket] = orjson.loads(sealed) if sealed is not None else dict(self.table.get(bucket) or {})
        return self._cache[bucket]

    @property
    def pending(self) -> int:
        """Buckets changed and not yet written to the table."""
        return len(self._dirty | self._sealed.keys())

    def begin_batch(self) -> None:
        self.busy = True

    def end_batch(self) -> None:
        """Seal the changes made since the last seal: they are what the next commit writes. A
        snapshot (serialized), since rules may change a bucket's values in place in later batches."""
        for bucket in self._dirty:
            self._sealed[bucket] = orjson.dumps(self._cache[bucket])
        self._dirty.clear()
        self.busy = False
        if self._flushed:  # every change is sealed or written: the table (or the seal) has it
            self._cache.clear()
            self._flushed = False

    def flush(self) -> int:
        """Write the sealed buckets to the table (a changelog record each); returns how many."""
        written = len(self._sealed)
        for bucket, data in self._sealed.items():
            self.table[bucket] = orjson.loads(data)
        self._sealed.clear()
        self._flushed = True
        if not self.busy and not self._dirty:
            self._cache.clear()
            self._flushed = False
        return written


class _Bucket:
    def __init__(self, owner: TableBuckets, bucket: str) -> None:
        self.owner, self.bucket = owner, bucket

    def get(self, key: str, default: Any = None) -> Any:
        return self.owner.load(self.bucket).get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        self.owner.load(self.bucket)[key] = value
        self.owner._dirty.add(self.bucket)

    def keys(self) -> Any:
        return self.owner.load(self.bucket).keys()


class _AllBuckets:
    """Absence rules' view: entries are named ``<kind>|<key uri>`` and live in that key's bucket."""

    def __init__(self, owner: TableBuckets) -> None:
        self.owner = owner

    def get(self, key: str, default: Any = None) -> Any:
        return self.owner.load(self._bucket(key)).get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        _Bucket(self.owner, self._bucket(key))[key] = value

    @staticmethod
    def _bucket(key: str) -> str:
        # absence findings are kept together; key facts (last-use|<uri>, ...) in their key's bucket
        return ABSENCE_BUCKET if key.startswith("finding|") else key.split("|", 1)[-1]

    def keys(self) -> Any:
        # the cache and the seal: buckets not yet in the table
        buckets = set(self.owner.table.keys()) | set(self.owner._cache) | set(self.owner._sealed)
        return [k for b in buckets for k in self.owner.load(b)]


class FlushStateOnCommit(faust.Sensor):
    """Writes the tables' pending state when Faust is about to commit offsets (every commit: the
    periodic one, the one at a rebalance's revocation, the one at a clean stop)."""

    def __init__(self, *states: TableBuckets) -> None:
        super().__init__()
        self.states = states

    def on_commit_initiated(self, consumer: Any) -> Any:
        for state in self.states:
            state.flush()
        return super().on_commit_initiated(consumer)
