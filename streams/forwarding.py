"""How the worker hands events from the key stream to the principal stream, in batches.

The events topic is keyed by key uri; principal-scoped rules (bursts across keys) need a principal's
events on one partition, so the key stream forwards every event to a topic of the worker's own,
partitioned by principal. Forwarding one Kafka message per event cost the worker more than all its
rules together (a produce, then a second pass through Faust's per-message machinery: bench/README.md
has the profile). So the key stream groups a batch's events by the partition their principal hashes
to, and sends one message per partition holding a JSON array of the events as they arrived.

The partition is computed with the producer's own partitioner (murmur2 of the principal, as Java
clients, kafka-python and aiokafka do), so a principal's events, and the principal table's entries
for it (streams.table_state.ColocatedTable places those with this same function), share a partition.
A single event (an object, not an array) is still read: what an older worker forwarded is not lost
across an upgrade.
"""

from __future__ import annotations

import orjson
from kafka.partitioner.default import murmur2

from ingest.schema import DecodeError, KeyEvent
from kmo.settings import Settings
from kmo.topics import Topic

MAX_FORWARD_BYTES = 512 * 1024  # well under the broker's message limit (kmo.kafka.MAX_MESSAGE_BYTES)


def forwarded_topic(settings: Settings) -> Topic:
    """The worker's own topic of forwarded batches, partitioned like the events topic."""
    return Topic(f"{settings.topic_prefix}kmo.events.by-principal.v1", settings.events_partitions)


def principal_key(event: KeyEvent) -> bytes:
    return (event.actor.principal or "unknown").encode()


def partition_for(key: bytes, partitions: int) -> int:
    """The partition a keyed record lands on with the default partitioner (murmur2, positive, mod n)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def forward_batches(events: list[KeyEvent], raws: list[bytes], partitions: int) -> list[tuple[int, bytes]]:
    """``(partition, message)`` pairs: each event's raw bytes in an array on its principal's partition,
    in arrival order, cut so that no message exceeds MAX_FORWARD_BYTES (one oversized event alone)."""
    groups: dict[int, list[bytes]] = {}
    for event, raw in zip(events, raws, strict=True):
        groups.setdefault(partition_for(principal_key(event), partitions), []).append(raw)
    out: list[tuple[int, bytes]] = []
    for partition, items in groups.items():
        chunk: list[bytes] = []
        size = 0
        for raw in items:
            if chunk and size + len(raw) + 1 > MAX_FORWARD_BYTES:
                out.append((partition, b"[" + b",".join(chunk) + b"]"))
                chunk, size = [], 0
            chunk.append(raw)
            size += len(raw) + 1
        out.append((partition, b"[" + b",".join(chunk) + b"]"))
    return out


def decode_forwarded(value: bytes) -> list[KeyEvent]:
    """The events in one forwarded message (an array, or one event from an older worker).

    Raises:
        DecodeError: when the message, or any event in it, is not a kmo event.
    """
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}", value) from exc
    docs = doc if isinstance(doc, list) else [doc]
    try:
        return [KeyEvent.from_ocsf(d) for d in docs]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DecodeError(f"not a batch of kmo events: {type(exc).__name__}: {exc}", value) from exc
