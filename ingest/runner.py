"""The collector loop every file-based source shares: read -> frame -> parse -> produce -> checkpoint.

Ordering rule: a checkpoint is saved only after ``producer.flush()`` returned and every send in the
batch succeeded, so progress never runs ahead of Kafka. Every frame ends up exactly one of: an
event on the events topic, a dead letter (raw bytes + reason) on the DLQ topic, or "skipped" (its
source's record but not about keys). The counts in :class:`RunSummary` add up to the records read.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kafka import KafkaProducer

from ingest.batching import EventBatcher
from ingest.checkpoints import CheckpointStore, Progress
from ingest.collectors.inputs import Input, InputError
from ingest.deadletter import DeadLetter, DeadLetterWriter
from ingest.framing import Frame, decode_bytes, frame_records
from ingest.parsers import Pairing, ParseError, Parser, RawRecord, Sequenced
from ingest.schema import EncodeError, KeyEvent, encode
from kmo.faults import crash_point
from kmo.kafka import partition_for

log = logging.getLogger(__name__)

# Records larger than this are not plausible audit events (CloudTrail caps its records at 256 KB);
# they are dead-lettered rather than sent as events that a 1 MiB production broker would refuse.
MAX_EVENT_BYTES = 900 * 1024


class ProduceError(RuntimeError):
    """Kafka refused or lost a send; nothing after the last checkpoint is considered done."""


@dataclass
class RunSummary:
    """What one collector run did. ``records == events + skipped + dead_lettered`` always holds."""

    source: str
    inputs: int = 0
    inputs_already_done: int = 0
    records: int = 0
    events: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    derived_events: int = 0  # events about the log itself (sequence gaps), not from one record
    last_event_time: datetime | None = None  # newest event time seen: with "now", the source's lag
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.unreadable

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "inputs": self.inputs,
            "inputs_already_done": self.inputs_already_done,
            "records": self.records,
            "events": self.events,
            "skipped": self.skipped,
            "dead_lettered": self.dead_lettered,
            "derived_events": self.derived_events,
            "last_event_time": self.last_event_time.isoformat() if self.last_event_time else None,
            "unreadable": [{"input": n, "reason": r} for n, r in self.unreadable],
            "seconds": round(self.seconds, 3),
        }


class Collector:
    """Runs one parser over inputs and produces what it makes. Not thread-safe."""

    def __init__(
        self,
        *,
        source: str,
        parser: Parser,
        producer: KafkaProducer,
        events_topic: str,
        dead_letters: DeadLetterWriter,
        checkpoints: CheckpointStore,
        batch_records: int = 5000,
        progress: Callable[[int], None] | None = None,
        pairing: Pairing | None = None,
        framer: Callable[[str], Iterator[Frame]] = frame_records,
        sequenced: Sequenced | None = None,
    ) -> None:
        self.source = source
        self.parser = parser
        self.pairing = pairing
        self.framer = framer
        self.sequenced = sequenced
        self._last_seq: dict[tuple[str, int], int] = {}  # (stream, epoch) -> last number seen
        self.producer = producer
        self.events_topic = events_topic
        self.dead_letters = dead_letters
        self.checkpoints = checkpoints
        self.batch_records = batch_records
        self.progress = progress
        self._pending: list[Any] = []  # send futures since the last flush
        self._queued = 0  # events and dead letters since the last flush: when to flush
        # several events per message, one message per partition (ingest.schema.batch says why)
        self._batcher = EventBatcher(self._send_message)
        # (input, next_index, done) reached since the last flush: saved only once that flush succeeds,
        # so many small files share one flush and one checkpoint transaction.
        self._reached: dict[str, tuple[Input, int, bool]] = {}
        self._known: dict[str, Progress] = {}
        self._partitions: list[int] | None = None  # the events topic's partitions, read once

    def run(self, inputs: Iterable[Input], summary: RunSummary | None = None) -> RunSummary:
        """Process every input; an unreadable one is recorded and the run goes on."""
        summary = summary or RunSummary(self.source)
        start = time.monotonic()
        self._known = self.checkpoints.load(self.source)
        try:
            for inp in _guarded(inputs, summary):
                summary.inputs += 1
                self._one_input(inp, summary)
            self.commit()
        finally:
            summary.seconds += time.monotonic() - start
        return summary

    # -- internals ---------------------------------------------------------------------------
    def _one_input(self, inp: Input, summary: RunSummary) -> None:
        progress = self._known.get(inp.id, Progress(0, False))
        if progress.done:
            summary.inputs_already_done += 1
            return
        try:
            data = inp.read_bytes()
        except InputError as exc:
            summary.unreadable.append((exc.name, exc.reason))
            log.error("cannot read %s: %s", exc.name, exc.reason)
            return
        decoded = decode_bytes(data)
        next_index = progress.next_index
        good = bad = 0
        last_index = -1
        open_requests: dict[str, Frame] = {}
        for frame in self.framer(decoded.text):
            last_index = frame.index
            if self.pairing is not None and frame.error is None:
                self._pair(frame, open_requests)  # also for frames an earlier run already produced
            if frame.index < next_index:
                continue  # produced by an earlier run that crashed before finishing this input
            ok = self.route(frame, inp.name, decoded.problem, summary)
            good += ok
            bad += not ok
            if self._queued >= self.batch_records:
                self._reached[inp.id] = (inp, frame.index + 1, False)
                self.commit()
        if decoded.tail:
            index = last_index + 1
            if index >= next_index:
                letter = DeadLetter(
                    decoded.tail,
                    "ingest",
                    self.source,
                    f"{inp.name}#{index}",
                    decoded.problem or "undecodable tail",
                )
                self._pending.append(self.dead_letters.send(letter))
                self._queued += 1
                summary.records += 1
                summary.dead_lettered += 1
                bad += 1
        for frame in open_requests.values():
            self.unanswered(frame, inp.name, counted=frame.index >= next_index, summary=summary)
        self._reached[inp.id] = (inp, max(last_index + 1, next_index), True)
        if self._queued >= self.batch_records:
            self.commit()
        if bad and not good and next_index == 0:
            reason = decoded.problem or f"no {self.source} record could be read from it"
            summary.unreadable.append((inp.name, f"{reason} (its bytes are on the dead-letter topic)"))

    def route(self, frame: Frame, name: str, problem: str | None, summary: RunSummary) -> bool:
        """Send one frame where it belongs; True if it was usable (an event or skipped)."""
        summary.records += 1
        if self.progress is not None:
            self.progress(1)
        origin = f"{name}#{frame.index}"
        if frame.error is not None:
            reason = f"{frame.error} (record {frame.index}, char {frame.offset})"
            if problem:
                reason += f"; {problem}"
            self._dead_letter(frame.raw, origin, reason, summary)
            return False
        try:
            event = self.parser(RawRecord(frame.text, frame.obj, origin))
        except ParseError as exc:
            self._dead_letter(frame.raw, origin, exc.reason, summary)
            return False
        if event is None:
            summary.skipped += 1
            return True
        if self.sequenced is not None:
            self._check_sequence(event, summary)
        return self._send_event(event, frame, origin, summary)

    def _check_sequence(self, event: KeyEvent, summary: RunSummary) -> None:
        """Emit a gap event when a sequence number is not the one after the last seen."""
        assert self.sequenced is not None
        gap = next_gap(self._last_seq, event, self.sequenced)
        if gap is not None:
            self._send(gap.partition_key, encode(gap))
            summary.derived_events += 1

    def _send(self, key: bytes, value: bytes) -> None:
        """Queue one event on its key's partition; :meth:`commit` later sends, flushes and checks it."""
        self._batcher.add(self._partition_for(key), value)
        self._queued += 1

    def _send_message(self, partition: int, value: bytes, _tags: list[Any]) -> None:
        self._pending.append(
            self.producer.send(
                self.events_topic, value=value, partition=partition, headers=[("kmo-source", self.source.encode())]
            )
        )

    def _send_event(self, event: KeyEvent, frame: Frame, origin: str, summary: RunSummary) -> bool:
        """Encode and send one event (or dead-letter its record); True if it was sent."""
        try:
            value = encode(event)
        except EncodeError as exc:
            self._dead_letter(frame.raw, origin, str(exc), summary)
            return False
        if len(value) > MAX_EVENT_BYTES:
            self._dead_letter(frame.raw, origin, f"record too large for an event ({len(value)} bytes)", summary)
            return False
        self._send(event.partition_key, value)
        summary.events += 1
        if summary.last_event_time is None or event.time > summary.last_event_time:
            summary.last_event_time = event.time
        return True

    def _pair(self, frame: Frame, open_requests: dict[str, Frame]) -> None:
        assert self.pairing is not None
        pid = self.pairing.pair_id(frame.obj)
        if pid is None:
            return
        op_id, kind = pid
        if kind == "request":
            open_requests[op_id] = frame
        else:
            open_requests.pop(op_id, None)

    def unanswered(self, frame: Frame, name: str, *, counted: bool, summary: RunSummary) -> None:
        """A request whose response never came: its own event (its frame was counted as skipped)."""
        assert self.pairing is not None
        origin = f"{name}#{frame.index}"
        try:
            event = self.pairing.parse_unanswered(RawRecord(frame.text, frame.obj, origin))
        except ParseError:
            return  # its frame was already dead-lettered by the parser on the first pass
        if event is None:
            return
        if counted:
            summary.skipped -= 1
        else:
            summary.records += 1
        self._send_event(event, frame, origin, summary)

    def _partition_for(self, key: bytes) -> int:
        """Kafka's default partition for ``key`` (kmo.kafka.partition_for, cached there)."""
        if self._partitions is None:
            self._partitions = sorted(self.producer.partitions_for(self.events_topic))
        return self._partitions[partition_for(key, len(self._partitions))]

    def _dead_letter(self, raw: bytes, origin: str, reason: str, summary: RunSummary) -> None:
        letter = DeadLetter(raw, "ingest", self.source, origin, reason)
        self._pending.append(self.dead_letters.send(letter))
        self._queued += 1
        summary.dead_lettered += 1

    def commit(self) -> None:
        """Send what is held, flush, verify every send, then (and only then) save the progress those
        sends cover."""
        self._batcher.flush()
        self.producer.flush()
        failed = [f for f in self._pending if f.failed()]
        self._pending.clear()
        self._queued = 0
        if failed:
            names = ", ".join(inp.name for inp, _, _ in self._reached.values())
            raise ProduceError(f"Kafka refused {len(failed)} record(s) from {names}: {failed[0].exception}")
        crash_point("collector.before_checkpoint")
        self.checkpoints.save_many(
            (self.source, inp.id, next_index, done) for inp, next_index, done in self._reached.values()
        )
        self._reached.clear()


def next_gap(last_seq: dict[tuple[str, int], int], event: KeyEvent, sequenced: Sequenced) -> KeyEvent | None:
    """Track ``event``'s sequence number; return a gap event if it is not the one after the last."""
    seq = sequenced.sequence(event)
    if seq is None:
        return None
    stream, epoch, number = seq
    last = last_seq.get((stream, epoch))
    last_seq[(stream, epoch)] = number
    if last is None or number == last + 1:
        return None
    return sequenced.gap_event(event, last + 1, number)


def _guarded(inputs: Iterable[Input], summary: RunSummary) -> Iterator[Input]:
    """Iterate inputs; a listing failure (missing path, S3 error) is recorded, not raised."""
    it = iter(inputs)
    while True:
        try:
            yield next(it)
        except StopIteration:
            return
        except InputError as exc:
            summary.unreadable.append((exc.name, exc.reason))
            print(f"kmo: cannot read {exc.name}: {exc.reason}", file=sys.stderr)
            return
