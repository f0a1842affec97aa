"""The embedded Apache Kafka broker: restart keeps topics, records and committed offsets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from kmo.kafka import ensure_all_topics, make_consumer, make_producer
from kmo.settings import Settings
from streams.broker.embedded import KAFKA_VERSION, EmbeddedKafka
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.integration


def test_restart_keeps_topics_records_and_offsets(tmp_path: Path) -> None:
    settings = Settings.from_env({"KMO_HOME": str(tmp_path / "home")})
    broker = EmbeddedKafka(settings)
    bootstrap = broker.start()
    try:
        topics = ensure_all_topics(settings, bootstrap)
        producer = make_producer(bootstrap)
        for i in range(50):
            producer.send(topics.events.name, key=f"k{i % 5}".encode(), value=f"v{i}".encode())
        producer.flush()
        producer.close()
        consumer = make_consumer(bootstrap, "g")
        tp = TopicPartition(topics.events.name, 0)
        consumer.commit({tp: OffsetAndMetadata(3, "", -1)})
        consumer.close()
        assert broker.stop() is True and broker.status()["running"] is False

        assert broker.start() == bootstrap, "clients keep their address across restarts"
        assert len(read_all(bootstrap, topics.events.name)) == 50
        consumer = make_consumer(bootstrap, "g")
        assert consumer.committed(tp) == 3
        consumer.close()
        assert ensure_all_topics(settings, bootstrap) == topics  # idempotent, nothing recreated
        parts = make_consumer(bootstrap, None).partitions_for_topic(topics.events.name)
        assert len(parts) == settings.events_partitions
    finally:
        broker.stop()


def test_cli_status_start_stop(tmp_path: Path) -> None:
    env = {"KMO_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    kmo = [sys.executable, "-m", "kmo.cli", "broker"]
    started = subprocess.run([*kmo, "start"], env=env, capture_output=True, text=True, timeout=120)
    try:
        assert started.returncode == 0, started.stderr
        status = json.loads(subprocess.run([*kmo, "status"], env=env, capture_output=True, text=True).stdout)
        assert status["running"] and status["bootstrap"] == started.stdout.strip()
        assert status["version"] == KAFKA_VERSION
    finally:
        stopped = subprocess.run([*kmo, "stop"], env=env, capture_output=True, text=True, timeout=60)
    assert stopped.stdout.strip() == "stopped"
    status = json.loads(subprocess.run([*kmo, "status"], env=env, capture_output=True, text=True).stdout)
    assert not status["running"]
