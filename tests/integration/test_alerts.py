"""``kmo alerts``: each finding once, in its latest state, filtered by severity."""

from __future__ import annotations

import json
import subprocess
import sys

import orjson
import pytest

from kmo.kafka import ensure_all_topics, make_producer
from kmo.settings import Settings
from streams.rules import any_key_disabled, any_short_pending_window
from streams.rules.testing import run_case
from tests.conftest import FIXTURES, kmo_env

pytestmark = pytest.mark.integration


def test_alerts_show_latest_state_once_and_filter_by_severity(settings: Settings) -> None:
    topics = ensure_all_topics(settings)
    medium = run_case(any_key_disabled, any_key_disabled.CASES[0], FIXTURES)[0]
    high = run_case(any_short_pending_window, any_short_pending_window.CASES[0], FIXTURES)[0]
    producer = make_producer(settings.kafka_bootstrap)
    producer.send(topics.findings.name, key=medium.uid.encode(), value=orjson.dumps(medium.to_ocsf()))
    medium.count = 5  # the same finding, grown: re-published under its uid
    producer.send(topics.findings.name, key=medium.uid.encode(), value=orjson.dumps(medium.to_ocsf()))
    producer.send(topics.findings.name, key=high.uid.encode(), value=orjson.dumps(high.to_ocsf()))
    producer.send(topics.findings.name, key=b"junk", value=b"not json")
    producer.flush()
    producer.close()
    kmo = [sys.executable, "-m", "kmo.cli", "alerts"]
    out = subprocess.run([*kmo, "--json"], env=kmo_env(settings), capture_output=True, text=True, timeout=60)
    docs = [json.loads(line) for line in out.stdout.splitlines()]
    assert sorted((d["finding_info"]["uid"], d["count"]) for d in docs) == sorted([(medium.uid, 5), (high.uid, 1)])
    table = subprocess.run(
        [*kmo, "--min-severity", "high"], env=kmo_env(settings), capture_output=True, text=True, timeout=60
    )
    assert "any.short_pending_window" in table.stdout and "any.key_disabled" not in table.stdout
