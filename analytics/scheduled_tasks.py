"""What each scheduled task does (see :mod:`analytics.schedule` for when).

* ``report``: every configured framework's report over the period ending at the slot, written to
  ``$KMO_HOME/<out>/<job>/<slot>/``.
* ``absence-detection``: the stream's own absence rules (orphaned keys, rotation overdue), run over
  state rebuilt from the warehouse (first seen, last use and last rotation of every key) against its
  latest inventory snapshot, plus audit sources silent for a day; the findings go to the findings
  topic, with the same uids the worker's timer would give them.
* ``rotation-check``: the rotation-policy scheduler's tick (``actions.scheduler``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from analytics.compliance_report import STALE_SOURCE
from analytics.query import run_query
from analytics.schedule import Job
from ingest.schema import format_timestamp
from kmo.settings import Settings
from streams.findings import Action, AnalyticType, Category, Finding, Severity, finding_uid, window_start
from streams.policy import Policy

Publish = Callable[[list[Finding]], None]


def report_task(settings: Settings, policy: Policy) -> Callable[[Job, datetime], dict[str, Any]]:
    from analytics.compliance_report import Evidence, controls
    from analytics.report_html import write_report

    def run(job: Job, slot: datetime) -> dict[str, Any]:
        evidence = Evidence(settings, slot - job.period, slot, policy)
        out = settings.home / job.out / job.name / slot.strftime("%Y%m%dT%H%M%SZ")
        written = [write_report(out, f, evidence, controls(evidence, f)) for f in job.frameworks]
        return {
            "directory": str(out),
            "period": {"start": evidence.s, "end": evidence.e},
            "compliant": {w["framework"]: w["compliant"] for w in written},
            "files": [w["html"] for w in written] + [w["json"] for w in written],
        }

    return run


def absence_task(settings: Settings, policy: Policy, publish: Publish) -> Callable[[Job, datetime], dict[str, Any]]:
    def run(job: Job, slot: datetime) -> dict[str, Any]:
        findings = absence_findings(settings, policy, slot)
        publish(findings)
        kinds: dict[str, int] = {}
        for f in findings:
            kinds[f.rule_id] = kinds.get(f.rule_id, 0) + 1
        return {"findings": len(findings), "byRule": kinds}

    return run


def absence_findings(settings: Settings, policy: Policy, now: datetime) -> list[Finding]:
    """Orphaned keys and overdue rotations by the stream's rules, and silent sources, as of ``now``."""
    from streams.engine import Engine
    from streams.inventory import parse_inventory
    from streams.rules import load_rules
    from streams.rules.base import MemoryState

    facts = run_query(
        settings,
        "SELECT key_uri, epoch(min(time)) AS seen, epoch(max(time) FILTER (WHERE is_usage AND success)) AS used, "
        "epoch(max(time) FILTER (WHERE op = 'rotate' AND success)) AS rotated "
        "FROM events WHERE key_uri IS NOT NULL AND time <= ? GROUP BY key_uri",
        [now],
    ).to_pylist()
    store = MemoryState()
    for row in facts:
        store[f"seen|{row['key_uri']}"] = row["seen"]
        if row["used"] is not None:
            store[f"last-use|{row['key_uri']}"] = row["used"]
        if row["rotated"] is not None:
            store[f"last-rotate|{row['key_uri']}"] = row["rotated"]
    records = []
    for row in run_query(settings, "SELECT system, CAST(doc AS VARCHAR) AS doc FROM inventory_latest").to_pylist():
        doc = orjson.loads(row["doc"])
        record = dict(doc["keyInfo"]) | {"keyManagementSystem": row["system"]}
        if doc.get("currentSince"):
            record["lastRotatedAt"] = doc["currentSince"]
        records.append(record)
    engine = Engine(load_rules(), policy=policy, inventory=parse_inventory(records), state=lambda scope, bucket: store)
    return engine.absences(now) + silent_sources(settings, now)


def silent_sources(settings: Settings, now: datetime) -> list[Finding]:
    """An audit source kmo has not heard from for a day: every "no use seen" about its keys is unsafe."""
    out = []
    for row in run_query(settings, "SELECT source, last_heartbeat, last_status FROM source_health").to_pylist():
        heard = row["last_heartbeat"]
        if heard is not None and now - heard <= STALE_SOURCE and row["last_status"] != "failing":
            continue
        when = window_start(now, 86400)
        out.append(
            Finding(
                uid=finding_uid("coverage.source_silent", row["source"], when),
                rule_id="coverage.source_silent",
                title="An audit source went silent",
                category=Category.POLICY_VIOLATION,
                severity=Severity.HIGH,
                action=Action.INVESTIGATE,
                analytic_type=AnalyticType.RULE,
                message=f"{row['source']}: last heard {format_timestamp(heard) if heard else 'never'} "
                f"({row['last_status']}); absence of use cannot be trusted for its keys",
                keys=[],
                actor=None,
                first_seen=now,
                last_seen=now,
                details={"source": row["source"], "last_heartbeat": format_timestamp(heard) if heard else None},
            )
        )
    return out
