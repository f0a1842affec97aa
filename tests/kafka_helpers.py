"""Reading topics back in tests, without consumer groups (assign + seek: no join delay)."""

from __future__ import annotations

from kafka import TopicPartition

from ingest.schema import KeyEvent
from ingest.schema.batch import decode_events
from kmo.kafka import make_consumer


def read_all(bootstrap: str, topic: str, *, timeout_ms: int = 2000) -> list:
    """Every record currently in ``topic``, all partitions, in partition/offset order."""
    consumer = make_consumer(bootstrap, None)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list = []
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            batch = consumer.poll(timeout_ms=timeout_ms)
            if not batch:
                break
            for recs in batch.values():
                out.extend(recs)
        return sorted(out, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def headers(record) -> dict[str, str]:
    return {k: v.decode("utf-8", "replace") for k, v in record.headers}


def read_events(bootstrap: str, topic: str) -> list[KeyEvent]:
    """Every event on an events topic, in partition/offset order and in order within each message
    (a message holds one or more: ingest.schema.batch); raises on anything that is not an event."""
    return [event for record in read_all(bootstrap, topic) for event in decode_events(record.value)]
