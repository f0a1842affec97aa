"""Read the dead-letter topic back (``kmo dlq``): what was refused, from where, and why."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kafka import TopicPartition

from kmo.kafka import make_consumer, resolve_bootstrap
from kmo.settings import Settings
from kmo.topics import Topics


def read_dead_letters(settings: Settings, *, limit: int = 100, timeout: float = 3.0) -> Iterator[dict[str, Any]]:
    """Yield up to ``limit`` dead letters from the start of the topic, without joining a group."""
    topic = Topics.for_settings(settings).dlq.name
    consumer = make_consumer(resolve_bootstrap(settings), None)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        seen = 0
        while seen < limit and any(consumer.position(tp) < ends[tp] for tp in tps):
            batch = consumer.poll(timeout_ms=int(timeout * 1000))
            if not batch:
                break
            for recs in batch.values():
                for rec in recs:
                    headers = {k: v.decode("utf-8", "replace") for k, v in rec.headers}
                    yield {
                        "origin": headers.get("kmo-origin", ""),
                        "stage": headers.get("kmo-stage", ""),
                        "source": headers.get("kmo-source", ""),
                        "reason": headers.get("kmo-reason", ""),
                        "size": int(headers.get("kmo-size", len(rec.value or b""))),
                        "sha256": headers.get("kmo-sha256", ""),
                        "quarantine": headers.get("kmo-quarantine"),
                        "raw": rec.value,
                        "offset": rec.offset,
                    }
                    seen += 1
                    if seen >= limit:
                        return
    finally:
        consumer.close()
