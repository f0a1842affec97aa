"""The orchestrator's audit log reaches DuckDB through the actions topic, each entry once."""

from __future__ import annotations

import pytest

from actions.audit_log import AuditLog
from actions.audit_shipper import ship
from analytics.query import run_query
from analytics.sink import run_sink
from kmo.kafka import ensure_all_topics, make_producer, resolve_bootstrap
from kmo.settings import Settings
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.integration


def test_entries_are_shipped_once_and_land_in_the_warehouse(settings: Settings) -> None:
    audit = AuditLog(settings.home / "actions" / "audit.jsonl")
    for outcome in ("requested", "succeeded"):
        audit.append(
            {
                "operationId": "op-1",
                "operation": "rotate",
                "outcome": outcome,
                "actor": "alice",
                "system": "local",
                "keyId": "local:orders",
            }
        )
    assert ship(settings) == 2
    assert ship(settings) == 0  # nothing new
    audit.append(
        {
            "operationId": "op-2",
            "operation": "rotate",
            "outcome": "succeeded",
            "actor": "kmo-responder:r",
            "system": "local",
            "keyId": "local:orders",
            "trigger": "finding-9",
        }
    )
    assert ship(settings) == 1
    topics = ensure_all_topics(settings)
    producer = make_producer(resolve_bootstrap(settings))  # a re-shipped entry (a crash before the mark moved)
    producer.send(
        topics.actions.name, key=b"op-1", value=read_all(resolve_bootstrap(settings), topics.actions.name)[0].value
    )
    producer.send(topics.actions.name, key=b"junk", value=b'{"no": "hash"}')
    producer.flush()
    producer.close()
    run_sink(settings, until_idle=3)
    rows = run_query(settings, "SELECT seq, outcome, actor, key_id, trigger FROM actions ORDER BY seq").to_pylist()
    assert [(r["seq"], r["outcome"], r["trigger"]) for r in rows] == [
        (1, "requested", None),
        (2, "succeeded", None),
        (3, "succeeded", "finding-9"),
    ]
    letters = read_all(resolve_bootstrap(settings), topics.dlq.name)
    assert len(letters) == 1 and letters[0].value == b'{"no": "hash"}'
