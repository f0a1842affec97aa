"""How the worker hands events from the key stream to the principal stream, in batches.

The events topic is keyed by key uri; principal-scoped rules (bursts across keys) need a principal's
events on one partition, so the key stream forwards every event to a topic of the worker's own,
partitioned by principal. Forwarding one Kafka message per event cost the worker more than all its
rules together (a produce, then a second pass through Faust's per-message machinery: bench/README.md
has the profile). So the key stream groups a batch's events by the partition their principal hashes
to, and sends one message per partition holding the events as they arrived, in the events topic's
own format (JSON lines: ingest.schema.batch). Each event goes without ``raw_data``, the provider's
record verbatim (over half its bytes): rules read the normalised fields and findings name events
by uid, and the record stays on the events topic and in the warehouse. That made the second pass
through Kafka cost the broker and the worker less (bench/README.md).

The partition is computed with the producer's own partitioner (murmur2 of the principal, as Java
clients, kafka-python and aiokafka do), so a principal's events, and the principal table's entries
for it (streams.table_state.ColocatedTable places those with this same function), share a partition.
What an older worker forwarded is still read: a JSON array of events, or one event.
"""

from __future__ import annotations

import orjson

from ingest.schema import DecodeError, KeyEvent
from ingest.schema.batch import decode_message, join_events
from kmo.kafka import partition_for
from kmo.settings import Settings
from kmo.topics import Topic

__all__ = ["decode_forwarded", "forward_batches", "forwarded_topic", "partition_for", "principal_key"]

MAX_FORWARD_BYTES = 512 * 1024  # well under the broker's message limit (kmo.kafka.MAX_MESSAGE_BYTES)


def forwarded_topic(settings: Settings) -> Topic:
    """The worker's own topic of forwarded batches, partitioned like the events topic."""
    return Topic(f"{settings.topic_prefix}kmo.events.by-principal.v1", settings.events_partitions)


def principal_key(event: KeyEvent) -> bytes:
    return (event.actor.principal or "unknown").encode()


def forward_batches(events: list[KeyEvent], raws: list[bytes], partitions: int) -> list[tuple[int, bytes]]:
    """``(partition, message)`` pairs: each event's raw bytes, one a line, on its principal's partition,
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
                out.append((partition, join_events(chunk)))
                chunk, size = [], 0
            chunk.append(raw)
            size += len(raw) + 1
        out.append((partition, join_events(chunk)))
    return out


def decode_forwarded(value: bytes) -> tuple[list[KeyEvent], list[DecodeError]]:
    """The events in one forwarded message, and the lines that are not events (each with its bytes).

    Lines are parsed one by one: faster than one array (orjson took 14 µs an event for an array of a
    thousand, 4 µs for each alone, measured on the benchmark's events), and a bad one costs only itself.
    """
    if value[:1] == b"[":  # an older worker's array
        try:
            docs = orjson.loads(value)
            return [KeyEvent.from_ocsf(d) for d in docs], []
        except orjson.JSONDecodeError as exc:
            return [], [DecodeError(f"not JSON: {exc}", value)]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return [], [DecodeError(f"not a batch of kmo events: {type(exc).__name__}: {exc}", value)]
    events, _, bad = decode_message(value)
    return events, bad
