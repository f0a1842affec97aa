"""Measure the Faust worker's throughput: events already on the topic, the worker started cold,
time until its consumer group has committed the end of the events topic. It counts Kafka messages
(offsets), and a message on ``kmo.events.v2`` holds up to 100 events: the figures are messages.

    KMO_HOME=... python bench/worker_throughput.py     # after `kmo demo --keep-broker`

Prints messages, seconds from the worker's first commit to the last, and messages/s over that span
(start-up and group join are reported separately, not counted in the rate).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from kafka import TopicPartition

from kmo.kafka import make_consumer, resolve_bootstrap
from kmo.settings import Settings
from kmo.topics import Topics


def main() -> None:
    settings = Settings.from_env()
    bootstrap = resolve_bootstrap(settings)
    topic = Topics.for_settings(settings).events.name
    group = f"{settings.topic_prefix}kmo-worker"
    probe = make_consumer(bootstrap, group)
    tps = [TopicPartition(topic, p) for p in sorted(probe.partitions_for_topic(topic))]
    ends = probe.end_offsets(tps)
    total = sum(ends.values()) - sum((probe.committed(tp) or 0) for tp in tps)
    started = time.monotonic()
    worker = subprocess.Popen(
        [sys.executable, "-m", "kmo.cli", "worker"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    first_commit = None
    try:
        while time.monotonic() - started < 900:
            done = sum((probe.committed(tp) or 0) for tp in tps)
            if done and first_commit is None:
                first_commit = (time.monotonic(), done)
            if done >= sum(ends.values()):
                break
            time.sleep(0.25)
        finished = time.monotonic()
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        probe.close()
    assert first_commit is not None
    span = finished - first_commit[0]
    counted = sum(ends.values()) - first_commit[1]
    print(
        json.dumps(
            {
                "messages": total,
                "startup_to_first_commit_s": round(first_commit[0] - started, 2),
                "processing_s": round(span, 2),
                "messages_per_s": round(counted / span) if span else None,
            }
        )
    )


if __name__ == "__main__":
    main()
