"""Findings reach the warehouse in their latest state: a growing finding re-published under one uid
is one row, and a replayed older state never overwrites a newer one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from analytics.query import run_query
from analytics.sink import run_sink
from kmo.kafka import ensure_all_topics, produce_confirmed, resolve_bootstrap
from kmo.settings import Settings
from streams.findings import Action, AnalyticType, Category, Finding, Severity
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _finding(count: int) -> Finding:
    return Finding(
        uid="f-1",
        rule_id="any.usage_spike",
        title="Usage spike",
        category=Category.ANOMALOUS_USAGE,
        severity=Severity.HIGH,
        action=Action.INVESTIGATE,
        analytic_type=AnalyticType.STATISTICAL,
        message=f"{count} times the usual",
        keys=["vault:transit/keys/payments"],
        actor="svc-batch",
        first_seen=T0,
        last_seen=T0 + timedelta(minutes=count),
        count=count,
        evidence=[f"e{i}" for i in range(count)],
    )


def test_latest_state_wins_and_bad_findings_are_dead_lettered(settings: Settings) -> None:
    topic = ensure_all_topics(settings).findings.name
    states = [_finding(1), _finding(3), _finding(2)]  # the last is an older state, replayed late
    messages = [(b"f-1", orjson.dumps(f.to_ocsf())) for f in states] + [(b"bad", b'{"finding_info": {}}')]
    produce_confirmed(settings, topic, messages)
    run_sink(settings, until_idle=3)
    rows = run_query(settings, "SELECT uid, count, severity, finding_type, keys, actor FROM findings").to_pylist()
    assert rows == [
        {
            "uid": "f-1",
            "count": 3,
            "severity": "high",
            "finding_type": "anomalous-usage",
            "keys": ["vault:transit/keys/payments"],
            "actor": "svc-batch",
        }
    ]
    letters = read_all(resolve_bootstrap(settings), ensure_all_topics(settings).dlq.name)
    assert [letter.value for letter in letters] == [b'{"finding_info": {}}']
