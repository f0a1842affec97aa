"""The sink's watch over its own Kafka consumer: records waiting, and the group's commits not moving.

Why this exists: after a broker restart, kafka-python's consumer can stop finding its group
coordinator for good. ``poll()`` keeps returning nothing, at full CPU, with no error after the
first few (seen in the chaos run, tests/faults/chaos.py, with kafka-python 3.0.12; the same class
of bug as dpkp/kafka-python#2373 and #1310). Nothing reaches the warehouse and nothing says so.

So a daemon thread reads, with a client of its own, the sink group's committed offset and the end
of each partition the sink reads (:class:`streams.stall_watch.StallWatch` decides what a stall is:
records waiting and the commit unchanged for ``stall_seconds``). On a stall it raises a flag that
the sink's loop takes between batches and answers by replacing its consumer: offsets are committed
only after DuckDB has the batch, so between batches nothing is uncommitted and a new consumer,
starting from the commits, loses and duplicates nothing. A stall again soon after the remedy, or a
loop that does not come back to take the flag (stuck inside the client), ends the process with
:data:`STALLED_EXIT` for its supervisor to restart, as the stream worker does.

The guard stays quiet while the sink holds a batch on purpose (a warehouse that cannot be written:
:meth:`SinkStallGuard.hold`), and a failed read (the broker away) is no evidence of anything.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager

from streams.stall_watch import StallWatch

log = logging.getLogger(__name__)
STALLED_EXIT = 75  # EX_TEMPFAIL: restart me (docker-compose and systemd units do)
ReadOffsets = Callable[[], Mapping[Hashable, tuple[int, int]]]


class SinkStallGuard:
    def __init__(
        self,
        read_offsets: ReadOffsets,
        stall_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        exit_process: Callable[[int], None] = os._exit,
    ) -> None:
        self.read_offsets = read_offsets
        self.stall_seconds = stall_seconds
        self.clock = clock
        self.exit_process = exit_process
        self.watch = StallWatch(stall_seconds)
        self._flagged_at: float | None = None  # a stall the loop has not taken yet
        self._remedied_at: float | None = None
        self._holds = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the sink's loop -------------------------------------------------------------------------
    def take_stall(self) -> bool:
        """True once per stall flagged: the loop replaces its consumer now."""
        with self._lock:
            if self._flagged_at is None:
                return False
            self._flagged_at = None
            self._remedied_at = self.clock()
            self.watch.reset()
            return True

    @contextmanager
    def hold(self) -> Iterator[None]:
        """The sink is holding a batch on purpose (retrying a warehouse write): not a stall."""
        with self._lock:
            self._holds += 1
        try:
            yield
        finally:
            with self._lock:
                self._holds -= 1
                self.watch.reset()

    # -- the guard's thread ----------------------------------------------------------------------
    def check(self) -> None:
        """One look: read the offsets, flag a stall, or end the process (see the module's docstring)."""
        try:
            offsets = self.read_offsets()
        except Exception as exc:  # the broker away or slow: no evidence either way
            log.debug("sink stall check skipped: %s", exc)
            return
        now = self.clock()
        with self._lock:
            if self._holds:
                self.watch.reset()
                return
            if self._flagged_at is not None:
                if now - self._flagged_at >= self.stall_seconds:
                    self._exit("the sink's loop did not come back from its Kafka client to replace it")
                return
            stalled = self.watch.observe(now, offsets)
            if not stalled:
                return
            waiting = sum(end - committed for committed, end in (offsets[tp] for tp in stalled))
            what = f"{waiting} records waiting on {len(stalled)} partitions, no commit for {self.stall_seconds:.0f} s"
            if self._remedied_at is not None and now - self._remedied_at < 3 * self.stall_seconds:
                self._exit(f"{what}, again, with a new consumer")
                return
            log.warning("%s: replacing the sink's Kafka consumer", what)
            self._flagged_at = now

    def _exit(self, why: str) -> None:
        log.error("%s; exiting (%d) so the supervisor restarts the sink", why, STALLED_EXIT)
        logging.shutdown()
        self.exit_process(STALLED_EXIT)

    def start(self) -> None:
        def run() -> None:
            while not self._stop.wait(max(0.5, self.stall_seconds / 4)):
                self.check()

        self._thread = threading.Thread(target=run, name="kmo-sink-guard", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
