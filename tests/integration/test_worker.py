"""The Faust worker against a real broker: it produces the same findings as ``kmo detect`` on the
same events, dead-letters what it cannot decode, and raises a finding within a second of its event."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.collect import collect
from kmo.demo.cloudtrail_files import render_files, write_files
from kmo.demo.estate import Estate
from kmo.demo.stream_check import read_findings
from kmo.kafka import make_producer
from kmo.settings import Settings
from kmo.topics import Topics
from streams.inventory import Inventory
from streams.policy import load_policy
from streams.replay import replay
from tests.conftest import FIXTURES, kmo_env, stop_process
from tests.kafka_helpers import headers, read_all, read_events

pytestmark = pytest.mark.integration


def wait_stable(settings: Settings, minimum: int, timeout: float = 150.0) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    last: dict[str, int] = {}
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        now = {u: d["count"] for u, d in read_findings(settings).items()}
        if now != last:
            last, stable_since = now, time.monotonic()
        elif len(now) >= minimum and time.monotonic() - stable_since > 6:
            break
        time.sleep(1)
    return read_findings(settings)


def test_worker_matches_replay_and_is_prompt(settings: Settings, tmp_path: Path) -> None:
    estate = Estate(seed=5, days=3, keys_per_account=6)
    write_files(tmp_path / "trail", render_files(estate.generate()))
    assert collect(settings, "aws.cloudtrail", [str(tmp_path / "trail")]).events > 1000
    topics = Topics.for_settings(settings)
    events = read_events(settings.kafka_bootstrap, topics.events.name)
    expected = {f.uid: f for f in replay(events, policy=load_policy(), inventory=Inventory()).findings}
    assert len(expected) >= 8

    producer = make_producer(settings.kafka_bootstrap)
    producer.send(topics.events.name, key=b"junk", value=b"\x00 not an event").get(timeout=30)
    env = kmo_env(settings) | {"KMO_ABSENCE_SECONDS": "3600"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "kmo.cli", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        got = wait_stable(settings, len(expected))
        assert set(got) == set(expected), "the worker and kmo detect must find the same findings"
        for uid, finding in expected.items():
            doc = got[uid]
            assert doc["finding_info"]["analytic"]["uid"] == finding.rule_id and doc["count"] == finding.count
            evidence = {e["uid"] for e in doc["finding_info"]["related_events"]}
            if not finding.rule_id.startswith(("any.error_burst", "any.secret_mass_read")):
                # principal-scoped rules see events in another order: same count, maybe other evidence
                assert evidence == set(finding.evidence), finding.rule_id

        letters = [
            r for r in read_all(settings.kafka_bootstrap, topics.dlq.name) if headers(r).get("kmo-stage") == "stream"
        ]
        assert [r.value for r in letters] == [b"\x00 not an event"]

        # latency: a new violation, produced now, becomes a finding on the topic within a second
        raw = json.loads((FIXTURES / "cloudtrail/decrypt_assumed_role.json").read_text())
        latencies = []
        for i in range(3):
            raw.update(eventName="PutKeyPolicy", eventID=f"lat-{i}", eventTime=f"2026-12-01T1{i}:00:00Z")
            raw["requestParameters"]["policy"] = '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*"}]}'
            raw["resources"][0]["ARN"] = (
                f"arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-00000000000{i}"
            )
            (tmp_path / f"lat{i}.json").write_text(json.dumps({"Records": [raw]}))
            before = set(read_findings(settings))
            start = time.monotonic()
            collect(settings, "aws.cloudtrail", [str(tmp_path / f"lat{i}.json")])
            while time.monotonic() - start < 10 and not set(read_findings(settings)) - before:
                time.sleep(0.02)
            latencies.append(time.monotonic() - start)
        print(f"ingest-to-finding latencies (s): {[round(x, 3) for x in latencies]}")
        assert sorted(latencies)[1] < 1.0, f"median seconds from ingest to finding: {sorted(latencies)[1]:.2f}"
    finally:
        stop_process(worker)
        producer.close()


def test_a_worker_that_stops_fetching_exits_for_its_supervisor_and_loses_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    """What the chaos run once saw (Faust owning partitions it never fetches again), injected: the
    worker notices records waiting without progress, tries a resume, then exits 75 for its
    supervisor; the restarted worker finds everything kmo detect finds."""
    from kmo.kafka import ensure_all_topics

    ensure_all_topics(settings)
    env = kmo_env(settings) | {"KMO_ABSENCE_SECONDS": "3600", "KMO_WORKER_STALL_SECONDS": "4"}
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        stuck = subprocess.Popen(
            [sys.executable, "-m", "kmo.cli", "worker", "--loglevel", "info"],
            env=env | {"KMO_FAULT": "worker.stop_fetching"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while "fault injected at worker.stop_fetching" not in log.read_text(errors="replace"):
            assert stuck.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
        estate = Estate(seed=9, days=2, keys_per_account=6)
        write_files(tmp_path / "trail", render_files(estate.generate()))
        assert collect(settings, "aws.cloudtrail", [str(tmp_path / "trail")]).events > 500
        assert stuck.wait(timeout=90) == 75
    finally:
        if stuck.poll() is None:
            stuck.kill()
    text = log.read_text(errors="replace")
    assert "no progress for 4 s: resuming them" in text and "still no progress after a resume; exiting (75)" in text
    events = read_events(settings.kafka_bootstrap, Topics.for_settings(settings).events.name)
    expected = {f.uid for f in replay(events, policy=load_policy(), inventory=Inventory()).findings}
    restarted = subprocess.Popen(
        [sys.executable, "-m", "kmo.cli", "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        assert set(wait_stable(settings, len(expected))) == expected
    finally:
        stop_process(restarted)
