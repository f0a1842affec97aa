"""Gathering encoded events into the events topic's messages, one partition at a time.

ingest.schema.batch says why the events topic carries several events per message and in what
format. The batcher holds each partition's events until the partition has ``max_events`` of them
or ``max_bytes`` of JSON, then hands them to ``send`` as one message; :meth:`EventBatcher.flush`
hands over whatever is held, and the collector calls it before it flushes its producer, so a
checkpoint still never runs ahead of what Kafka has taken. Order within a partition is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ingest.schema.batch import join_events

# ~70 of the benchmark's 3.6 KB events. Small enough that a message stays far below a production
# broker's 1 MiB default and a worker's buffered messages stay bounded; large enough that per-message
# costs (Faust's hand-off, kafka-python's record code) are a few percent of an event's.
MAX_BATCH_EVENTS = 100
MAX_BATCH_BYTES = 256 * 1024


class EventBatcher:
    """Per-partition buffers of encoded events. Not thread-safe."""

    def __init__(
        self,
        send: Callable[[int, bytes, list[Any]], None],
        *,
        max_events: int = MAX_BATCH_EVENTS,
        max_bytes: int = MAX_BATCH_BYTES,
    ) -> None:
        """``send(partition, message, tags)`` is called once per message, with the ``tag`` given to
        :meth:`add` for each event in it, in order (the benchmark tags events with their read time)."""
        self._send = send
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._held: dict[int, tuple[list[bytes], list[Any]]] = {}
        self._bytes: dict[int, int] = {}

    def add(self, partition: int, value: bytes, tag: Any = None) -> None:
        """Queue one encoded event (newline-free, as ``ingest.schema.encode`` makes it)."""
        held = self._held.get(partition)
        if held is not None and self._bytes[partition] + len(value) + 1 > self.max_bytes:
            self._emit(partition)  # an event too large to join the others goes alone after them
            held = None
        if held is None:
            held = self._held[partition] = ([], [])
            self._bytes[partition] = 0
        held[0].append(value)
        held[1].append(tag)
        self._bytes[partition] += len(value) + 1
        if len(held[0]) >= self.max_events or self._bytes[partition] >= self.max_bytes:
            self._emit(partition)

    def flush(self) -> None:
        """Send every partition's held events now."""
        for partition in list(self._held):
            self._emit(partition)

    @property
    def held(self) -> int:
        """Events queued and not yet handed to ``send``."""
        return sum(len(values) for values, _ in self._held.values())

    def _emit(self, partition: int) -> None:
        values, tags = self._held.pop(partition)
        del self._bytes[partition]
        self._send(partition, join_events(values), tags)
