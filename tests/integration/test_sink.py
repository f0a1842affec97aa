"""The warehouse sink against a real broker: every event lands in DuckDB exactly once, whatever
crashes where; undecodable messages are dead-lettered; analysts query while it writes."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest
from kafka import TopicPartition

from analytics.query import QueryError, run_query
from analytics.sink import WarehouseSink
from ingest.collect import collect
from ingest.schema import encode
from ingest.schema.batch import decode_events
from kmo.demo.cloudtrail_files import render_files, write_files
from kmo.demo.estate import Estate
from kmo.kafka import group_lag, make_consumer, make_producer
from kmo.settings import Settings
from kmo.topics import Topics
from tests.conftest import kmo_env
from tests.kafka_helpers import headers, read_all, read_events
from tests.unit.test_schema import sample

pytestmark = pytest.mark.integration
KMO = [sys.executable, "-m", "kmo.cli"]


def load_estate(settings: Settings, tmp_path: Path, days: int = 1, seed: int = 3) -> set[str]:
    """Write a small synthetic estate as CloudTrail files, ingest it, return the expected uids."""
    estate = Estate(seed=seed, days=days, keys_per_account=6)
    records = estate.generate()
    write_files(tmp_path / "trail", render_files(records))
    summary = collect(settings, "aws.cloudtrail", [str(tmp_path / "trail")])
    assert summary.events == len(records) and summary.dead_lettered == 0
    topic = Topics.for_settings(settings).events.name
    return {e.uid for e in read_events(settings.kafka_bootstrap, topic)}


def warehouse_uids(settings: Settings) -> list[str]:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return [row[0] for row in con.execute("SELECT uid FROM events").fetchall()]
    finally:
        con.close()


def warehouse_rows(settings: Settings) -> int:
    """Events plus heartbeats: the sink's batches hold both, in Kafka order."""
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return sum(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("events", "coverage"))  # noqa: S608
    finally:
        con.close()


def rows_under_commits(settings: Settings, group: str = "kmo-sink") -> int:
    """Events and heartbeats in the messages below the group's committed offsets: what the sink has
    finished with (a message on the events topic holds one or more events)."""
    topics = Topics.for_settings(settings)
    probe = make_consumer(settings.kafka_bootstrap, group)
    try:
        total = 0
        for topic in (topics.events.name, topics.coverage.name):
            records = read_all(settings.kafka_bootstrap, topic)
            marks = {p: probe.committed(TopicPartition(topic, p)) or 0 for p in {r.partition for r in records}}
            done = [r for r in records if r.offset < marks[r.partition]]
            total += sum(len(decode_events(r.value)) for r in done) if topic == topics.events.name else len(done)
        return total
    finally:
        probe.close()


def committed_equals_end(settings: Settings, group: str = "kmo-sink") -> bool:
    return group_lag(settings.kafka_bootstrap, group, Topics.for_settings(settings).events.name) == 0


def sink_cmd(*extra: str) -> list[str]:
    return [*KMO, "sink", "--until-idle", "2", *extra]


def test_sink_writes_every_event_once_and_commits_offsets(settings: Settings, tmp_path: Path) -> None:
    expected = load_estate(settings, tmp_path)
    sink = WarehouseSink(settings, batch_max=500)
    try:
        stats = sink.run(until_idle=1.0)
    finally:
        sink.close()
    uids = warehouse_uids(settings)
    assert len(uids) == len(set(uids)) == len(expected) and set(uids) == expected
    assert stats.inserted == len(expected) and stats.batches >= len(expected) // 500
    assert committed_equals_end(settings)
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        (daily,) = con.execute("SELECT sum(events) FROM usage_daily").fetchone()
        (usage,) = con.execute("SELECT count(*) FROM events WHERE is_usage AND key_uri IS NOT NULL").fetchone()
        assert daily == usage > 0
        assert con.execute("SELECT count(*) FROM key_last_use WHERE last_use IS NULL").fetchone() == (1,)  # the orphan
    finally:
        con.close()
    assert os.stat(settings.warehouse).st_mode & 0o777 == 0o600
    health = run_query(settings, "SELECT source, last_status, events_reported FROM source_health").to_pylist()
    assert health == [{"source": "aws.cloudtrail", "last_status": "ok", "events_reported": len(expected)}]


@pytest.mark.parametrize("point", ["sink.before_db_commit", "sink.after_db_commit"])
def test_a_crash_around_the_db_commit_loses_and_duplicates_nothing(
    settings: Settings, tmp_path: Path, point: str
) -> None:
    expected = load_estate(settings, tmp_path)
    env = kmo_env(settings) | {"KMO_FAULT": f"{point}:2"}
    crashed = subprocess.run(sink_cmd("--batch-max", "300"), env=env, capture_output=True, text=True, timeout=180)
    assert crashed.returncode == 137, crashed.stderr
    in_db, committed = warehouse_rows(settings), rows_under_commits(settings)
    # before the commit the second batch is rolled back; after it, it is in DuckDB but not in Kafka's
    # offsets. A batch is at most 300 events, in whole messages of up to 100 (ingest.schema.batch).
    assert 200 < committed <= 300
    second = in_db - committed
    assert second == 0 if point == "sink.before_db_commit" else 200 < second <= 300
    assert not committed_equals_end(settings)
    env.pop("KMO_FAULT")
    resumed = subprocess.run(sink_cmd("--batch-max", "300"), env=env, capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    stats = json.loads(resumed.stdout)
    uids = warehouse_uids(settings)
    assert len(uids) == len(set(uids)) == len(expected) and set(uids) == expected
    if point == "sink.after_db_commit":
        # the re-read batch (its events, perhaps the run's heartbeat) was ignored, not inserted twice
        assert stats["duplicates_ignored"] in (second - 1, second)
    assert committed_equals_end(settings)


def test_sigkill_at_random_moments_still_lands_everything_once(settings: Settings, tmp_path: Path) -> None:
    expected = load_estate(settings, tmp_path, days=4)
    env = kmo_env(settings)
    rng = random.Random(11)
    kills, landed = 0, [0]
    for _ in range(3):
        proc = subprocess.Popen(
            sink_cmd("--batch-max", "100"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # Kill only once this sink has visibly written something (seen through its own query
        # socket), so every kill lands mid-stream rather than during start-up or after the end.
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                count = run_query(settings, "SELECT count(*) AS n FROM events").to_pylist()[0]["n"]
            except QueryError:
                count = landed[-1]
            if count > landed[-1]:
                landed.append(count)
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.2))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
    final = subprocess.run(sink_cmd("--batch-max", "100"), env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert kills >= 2 and landed[-1] < len(expected), f"kills={kills}, landed={landed}: not mid-stream"
    uids = warehouse_uids(settings)
    assert len(uids) == len(set(uids)) == len(expected) and set(uids) == expected


def test_undecodable_messages_are_dead_lettered_by_the_sink(settings: Settings, tmp_path: Path) -> None:
    expected = load_estate(settings, tmp_path)
    topics = Topics.for_settings(settings)
    producer = make_producer(settings.kafka_bootstrap)
    producer.send(topics.events.name, key=b"junk", value=b"\xff not an event")
    producer.send(topics.events.name, key=b"junk", value=b'{"metadata": {"uid": "x"}}')
    # a message of several events (ingest.schema.batch) with a bad line among them: the bad line
    # alone is dead-lettered, the events around it are stored
    extra = [sample(uid=f"aws.cloudtrail:batch-{i}:{i:016x}") for i in range(2)]
    producer.send(topics.events.name, value=encode(extra[0]) + b"\n[1, 2]\n" + encode(extra[1]))
    producer.flush()
    producer.close()
    sink = WarehouseSink(settings)
    try:
        stats = sink.run(until_idle=1.0)
    finally:
        sink.close()
    assert stats.dead_lettered == 3 and set(warehouse_uids(settings)) == expected | {e.uid for e in extra}
    letters = [r for r in read_all(settings.kafka_bootstrap, topics.dlq.name) if headers(r)["kmo-stage"] == "sink"]
    assert sorted(r.value for r in letters) == [b"[1, 2]", b'{"metadata": {"uid": "x"}}', b"\xff not an event"]
    assert all(headers(r)["kmo-origin"].startswith("kafka://") for r in letters)
    reasons = [headers(r)["kmo-reason"] for r in letters if r.value == b"[1, 2]"]
    assert reasons[0].startswith("event 2 of 3 in the message: not a JSON object")
    assert committed_equals_end(settings)


def test_analysts_query_while_the_sink_writes(settings: Settings, tmp_path: Path) -> None:
    expected = load_estate(settings, tmp_path)
    sink = WarehouseSink(settings)
    thread = threading.Thread(target=sink.run, kwargs={"until_idle": None}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        count = 0
        while time.monotonic() < deadline and count < len(expected):
            count = run_query(settings, "SELECT count(*) AS n FROM events").to_pylist()[0]["n"]
            time.sleep(0.2)
        assert count == len(expected)
        # the file is held by the sink: another process cannot open it, so queries go through the socket
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import duckdb; duckdb.connect({str(settings.warehouse)!r}, read_only=True)",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert other.returncode != 0 and "lock" in other.stderr.lower()
        got = run_query(
            settings,
            "SELECT count(*) AS n FROM events WHERE key_uri = ?",
            [
                sorted(expected)[0]
                and run_query(settings, "SELECT key_uri FROM events LIMIT 1").to_pylist()[0]["key_uri"]
            ],
        )
        assert got.to_pylist()[0]["n"] > 0
        for refused in ("DELETE FROM events", "DROP TABLE events", "SELECT 1; SELECT 2", "ATTACH 'x.db'"):
            with pytest.raises(QueryError):
                run_query(settings, refused)
        assert (settings.home / "sink.sock").stat().st_mode & 0o777 == 0o600
    finally:
        sink.stop_event.set()
        thread.join(timeout=30)
        sink.close()
    assert not (settings.home / "sink.sock").exists()
    # with no sink running, the same query reads the file read-only
    assert run_query(settings, "SELECT count(*) AS n FROM events").to_pylist()[0]["n"] == len(expected)


def test_the_sinks_duckdb_memory_is_capped(settings: Settings) -> None:
    # DuckDB's default (80 % of RAM) let the soak's sink grow with the warehouse file
    sink = WarehouseSink(settings.with_(warehouse_memory_mb=128))
    try:
        limit = sink.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    finally:
        sink.close()
    assert limit in ("122.0 MiB", "128.0 MiB", "128.0 MB"), limit
    assert Settings.from_env({"KMO_HOME": "/tmp/x"}).warehouse_memory_mb == 512


def test_a_backlog_folds_the_wal_rarely_until_the_sink_catches_up(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Records waiting after a batch raise DuckDB's checkpoint threshold (analytics.checkpoint_mode);
    once none wait, the default is back. Small batches, so that this small estate is a backlog."""
    import analytics.sink as sink_module

    expected = load_estate(settings, tmp_path)
    monkeypatch.setattr(sink_module, "POLL_RECORDS", 2)  # "a backlog": two messages or more still waiting
    sink = WarehouseSink(settings, batch_max=100)
    try:
        with caplog.at_level(logging.INFO, logger="analytics.checkpoint_mode"):
            sink.run(until_idle=1.0)
        now = sink.con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0]
    finally:
        sink.close()
    said = [r.getMessage() for r in caplog.records if r.name == "analytics.checkpoint_mode"]
    assert said[0] == "DuckDB folds its WAL at 256 MiB now (a backlog)"
    assert said[-1] == "DuckDB folds its WAL at 16 MiB now (caught up)" and now == "16.0 MiB"
    uids = warehouse_uids(settings)
    assert len(uids) == len(set(uids)) == len(expected) and set(uids) == expected
