"""``kmo sink``: the warehouse's single writer.

Loop: poll a micro-batch from the events topic -> decode (undecodable messages go to the DLQ with
their raw bytes) -> one DuckDB transaction inserting the batch through Arrow, idempotent on the
event uid -> only then commit the Kafka offsets. A crash anywhere re-delivers at most the
uncommitted batch, and the uid makes the second insert a no-op: every event lands exactly once.
A guard (analytics.sink_guard) replaces a consumer that has stopped reading while records wait.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import orjson
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from analytics.checkpoint_mode import CheckpointMode
from analytics.query import sink_socket
from analytics.query_server import QueryServer
from analytics.sink_guard import SinkStallGuard
from analytics.warehouse import events_to_arrow, insert_batch, open_warehouse
from ingest.batching import MAX_BATCH_EVENTS
from ingest.deadletter import DeadLetter, DeadLetterWriter
from ingest.schema import KeyEvent
from ingest.schema.batch import decode_message
from kmo.faults import crash_point
from kmo.kafka import committed_and_end, ensure_all_topics, make_consumer, make_producer, resolve_bootstrap
from kmo.pause import Pause
from kmo.settings import Settings

log = logging.getLogger(__name__)
POLL_RECORDS = 200  # messages per poll at most: 20,000 events (the default batch) of full messages
RETRY_SECONDS = 2.0  # while the warehouse is locked or cannot be written, or the broker is away


@dataclass
class SinkStats:
    batches: int = 0
    consumed: int = 0
    inserted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    write_retries: int = 0
    started: float = field(default_factory=time.monotonic)

    def as_dict(self) -> dict[str, float | int]:
        return {
            "batches": self.batches,
            "consumed": self.consumed,
            "inserted": self.inserted,
            "duplicates_ignored": self.duplicates,
            "dead_lettered": self.dead_lettered,
            "seconds": round(time.monotonic() - self.started, 3),
        }


class WarehouseSink:
    """Consumes the events topic into DuckDB. One per warehouse file."""

    def __init__(
        self,
        settings: Settings,
        *,
        group_id: str = "kmo-sink",
        batch_max: int = 20000,
        batch_seconds: float = 0.1,
        serve_queries: bool = True,
    ) -> None:
        self.settings = settings
        self._kafka_pause: Pause | None = None
        self.batch_max = batch_max
        self.batch_seconds = batch_seconds
        self.bootstrap = bootstrap = resolve_bootstrap(settings)
        self.group_id = group_id
        self.topics = ensure_all_topics(settings, bootstrap)
        self.stop_event = threading.Event()
        self.con = self._open_when_free(settings)
        self.checkpoints = CheckpointMode(self.con)  # rare folds while working through a backlog
        # JSON documents besides events: topic -> (what it carries, the fields and types it must have);
        # anything else on those topics is dead-lettered, never dropped
        self._documents: dict[str, tuple[str, tuple[tuple[str, type], ...]]] = {
            self.topics.coverage.name: ("heartbeat", (("uid", str), ("source", str))),
            self.topics.actions.name: ("audit entry", (("hash", str), ("seq", int))),
            self.topics.inventory.name: (
                "inventory snapshot",
                (("uid", str), ("snapshotId", str), ("takenAt", str), ("system", str), ("keyInfo", dict)),
            ),
            self.topics.findings.name: ("finding", (("finding_info", dict), ("severity_id", int), ("count", int))),
        }
        self.consumer = self._new_consumer()
        self.producer = make_producer(bootstrap)
        read = [self.topics.events, *(t for t in self.topics.all() if t.name in self._documents)]
        self._partitions = [TopicPartition(t.name, p) for t in read for p in range(t.partitions)]
        # the sink checks its own consumer (analytics.sink_guard says why); 0 turns the check off
        stall_seconds = float(os.environ.get("KMO_SINK_STALL_SECONDS", "60"))
        self.guard = SinkStallGuard(self._group_offsets, stall_seconds) if stall_seconds > 0 else None
        self.dead_letters = DeadLetterWriter(self.producer, self.topics.dlq.name, settings.home / "quarantine")
        self.stats = SinkStats()
        self.parquet = None
        if settings.parquet:
            from analytics.parquet_export import ParquetSink

            self.parquet = ParquetSink(settings.parquet)
        self.server = QueryServer(self.con, sink_socket(settings)) if serve_queries else None

    def _open_when_free(self, settings: Settings) -> duckdb.DuckDBPyConnection:
        """The warehouse, waiting (and saying why) while another process holds its write lock."""
        pause = Pause(log, RETRY_SECONDS)
        while True:
            try:
                return open_warehouse(settings.warehouse, memory_mb=settings.warehouse_memory_mb)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or self.stop_event.is_set():
                    raise
                pause.wait(logging.WARNING, f"the warehouse {settings.warehouse} is locked ({exc}); waiting for it")

    def _write(self, write: Callable[[], int]) -> int:
        """Run one DuckDB transaction, retrying it while the file cannot be written (a full disk,
        an I/O error): nothing new is consumed and no offset moves until the batch is in."""
        pause = Pause(log, RETRY_SECONDS)
        while True:
            self.con.execute("BEGIN TRANSACTION")
            try:
                inserted = write()
                crash_point("sink.before_db_commit")
                self.con.execute("COMMIT")
                return inserted
            except duckdb.IOException as exc:
                self.con.execute("ROLLBACK")
                if self.stop_event.is_set():
                    raise
                self.stats.write_retries += 1
                with self.guard.hold() if self.guard is not None else contextlib.nullcontext():  # on purpose
                    pause.wait(logging.ERROR, f"cannot write the warehouse ({exc}); holding this batch and retrying")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise

    def run(self, *, until_idle: float | None = None, on_batch: Callable[[SinkStats], None] | None = None) -> SinkStats:
        """Consume until stopped (SIGTERM/SIGINT or :attr:`stop_event`), or, with ``until_idle``,
        until caught up with the topic's end and nothing new arrived for that many seconds."""
        idle_since = time.monotonic()
        if self.guard is not None:
            self.guard.start()
        while not self.stop_event.is_set():
            if self.guard is not None and self.guard.take_stall():
                self._replace_consumer()
            batch = self._poll_batch()
            if batch:
                self._process(batch)
                # the fault the guard is for, injected: a consumer that reads nothing more, no error
                crash_point("sink.stop_fetching", lambda: self.consumer.pause(*self.consumer.assignment()))
                idle_since = time.monotonic()
                if on_batch is not None:
                    on_batch(self.stats)
            elif until_idle is not None and time.monotonic() - idle_since >= until_idle and self._caught_up():
                break
        return self.stats

    def close(self) -> None:
        if self.guard is not None:
            self.guard.stop()
        if self.server is not None:
            self.server.close()
        self.consumer.close(autocommit=False)
        self.producer.close()
        self.con.close()

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT finish the current batch, then stop: a clean stop never replays."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())

    # -- internals ---------------------------------------------------------------------------
    def _new_consumer(self) -> KafkaConsumer:
        consumer = make_consumer(
            self.bootstrap,
            self.group_id,
            session_timeout_ms=self.settings.session_timeout_ms,
            max_poll_records=POLL_RECORDS,
        )
        consumer.subscribe([self.topics.events.name, *self._documents])
        return consumer

    def _replace_consumer(self) -> None:
        """A new consumer for one that stopped reading. Called between batches, when every batch
        read is written and committed: the new one starts from the commits, losing and repeating
        nothing. The old one is closed on a thread of its own: it may never return."""
        old, self.consumer = self.consumer, self._new_consumer()
        threading.Thread(
            target=old.close, kwargs={"autocommit": False}, name="kmo-sink-old-consumer", daemon=True
        ).start()

    def _group_offsets(self) -> dict[TopicPartition, tuple[int, int]]:
        """The guard's reading: the group's commit and the end of every partition the sink reads,
        with a client of its own (the sink's may be the one that is stuck), each request bounded."""
        reader = make_consumer(self.bootstrap, self.group_id)
        try:
            return committed_and_end(reader, self._partitions, timeout_ms=10_000)
        finally:
            reader.close(autocommit=False, timeout_ms=5_000)

    def _poll_batch(self) -> list:
        """Records of at most ``batch_max`` events, or what the window brought. A message holds up to
        MAX_BATCH_EVENTS events (ingest.schema.batch), so each poll asks for as many messages as
        surely fit; a batch is one message when ``batch_max`` is smaller than a message."""
        records: list = []
        events = 0
        deadline = time.monotonic() + self.batch_seconds
        while True:
            room = self.batch_max - events
            if records and room < MAX_BATCH_EVENTS:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                polled = self.consumer.poll(
                    timeout_ms=int(remaining * 1000) + 1,
                    max_records=max(1, min(POLL_RECORDS, room // MAX_BATCH_EVENTS)),
                )
            except KafkaError as exc:  # the broker away: write what we have, then wait for it
                if not records:
                    self._kafka_pause = self._kafka_pause or Pause(log, RETRY_SECONDS)
                    self._kafka_pause.wait(logging.WARNING, f"Kafka is unreachable ({exc}); retrying")
                break
            self._kafka_pause = None
            for recs in polled.values():
                records.extend(recs)
                events += sum((rec.value or b"").count(b"\n") + 1 for rec in recs)
            if not polled and records:
                break  # nothing more right now: write what we have rather than wait
        return records

    def _process(self, records: list) -> None:
        started = time.monotonic()
        events: list[KeyEvent] = []
        positions: list[tuple[int, int]] = []
        documents: dict[str, list[dict]] = {name: [] for name in self._documents}
        pending = []
        for rec in records:
            if rec.topic in self._documents:
                what, required = self._documents[rec.topic]
                try:
                    doc = orjson.loads(rec.value)
                    if not isinstance(doc, dict) or any(not isinstance(doc.get(f), t) for f, t in required):
                        raise ValueError(f"not a kmo {what}")
                    if "keyInfo" in doc and not isinstance(doc["keyInfo"].get("keyId"), str):
                        raise ValueError("keyInfo without a keyId")
                    if "finding_info" in doc and not isinstance(doc["finding_info"].get("uid"), str):
                        raise ValueError("finding_info without a uid")
                    documents[rec.topic].append(doc)
                except ValueError as exc:
                    origin = f"kafka://{rec.topic}/{rec.partition}@{rec.offset}"
                    letter = DeadLetter(rec.value or b"", "sink", rec.topic, origin, f"bad {what}: {exc}")
                    pending.append(self.dead_letters.send(letter))
                continue
            decoded, _, bad = decode_message(rec.value or b"")  # several events a message (ingest.schema.batch)
            events += decoded
            positions += [(rec.partition, rec.offset)] * len(decoded)
            for exc in bad:  # a line that is not an event: dead-lettered alone, the rest of its message kept
                origin = f"kafka://{rec.topic}/{rec.partition}@{rec.offset}"
                letter = DeadLetter(exc.raw or b"", "sink", rec.topic, origin, exc.reason)
                pending.append(self.dead_letters.send(letter))
        if pending:
            self.producer.flush()
            failed = [f for f in pending if f.failed()]
            if failed:  # do not commit past records whose dead letter was not stored
                raise RuntimeError(f"could not dead-letter {len(failed)} record(s): {failed[0].exception}")
            self.stats.dead_lettered += len(pending)
        inserted = 0
        if events or any(documents.values()):
            table = events_to_arrow(events, positions) if events else None
            if table is not None and self.parquet is not None:  # before the commits: at-least-once, keyed by uid
                self.parquet.write(table, self.parquet.batch_id([("e", p, o) for p, o in positions]))

            def write() -> int:
                return insert_batch(
                    self.con,
                    table,
                    heartbeats=documents[self.topics.coverage.name],
                    actions=documents[self.topics.actions.name],
                    inventory=documents[self.topics.inventory.name],
                    findings=documents[self.topics.findings.name],
                )

            inserted = self._write(write)
        written = time.monotonic()
        crash_point("sink.after_db_commit")
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for rec in records:
            tp = TopicPartition(rec.topic, rec.partition)
            if tp not in offsets or offsets[tp].offset <= rec.offset:
                offsets[tp] = OffsetAndMetadata(rec.offset + 1, "", -1)
        try:
            self.consumer.commit(offsets)
        except KafkaError as exc:
            # A rebalance took the partitions, or the broker went away: the batch's new reader (or
            # this one, from the last commit) re-reads it, and the uid makes those inserts no-ops.
            log.warning("offset commit failed (the batch will be re-read, harmlessly): %s", exc)
        log.info(
            "batch: %d records, %d inserted; decode+write %.0f ms, offset commit %.0f ms",
            len(records), inserted, 1000 * (written - started), 1000 * (time.monotonic() - written),
        )  # fmt: skip
        # a large batch (a quarter of batch_max: 5,000 events; at 1,000 events/s a batch holds ~150)
        # or records still waiting beyond it: fold the WAL rarely until the sink keeps up
        behind = len(events) >= self.batch_max // 4 or self._waiting_messages() >= POLL_RECORDS
        self.checkpoints.after_batch(behind=behind)
        self.stats.batches += 1
        self.stats.consumed += len(records)
        self.stats.inserted += inserted
        self.stats.duplicates += len(events) - inserted

    def _waiting_messages(self) -> int:
        """Messages on the events topic past this consumer's position, as its last fetches saw the
        partitions' ends (no request: kafka-python keeps each partition's high watermark)."""
        waiting = 0
        for tp in self.consumer.assignment():
            if tp.topic != self.topics.events.name:
                continue
            end = self.consumer.highwater(tp)
            position = self.consumer.position(tp) if end is not None else None
            if end is not None and position is not None:
                waiting += max(0, end - position)
        return waiting

    def _caught_up(self) -> bool:
        assignment = self.consumer.assignment()
        if not assignment:
            return False
        ends = self.consumer.end_offsets(list(assignment))
        return all(self.consumer.position(tp) >= end for tp, end in ends.items())


def run_sink(settings: Settings, *, until_idle: float | None = None, batch_max: int = 20000) -> SinkStats:
    sink = WarehouseSink(settings, batch_max=batch_max)
    sink.install_signal_handlers()
    try:
        return sink.run(until_idle=until_idle)
    finally:
        sink.close()
