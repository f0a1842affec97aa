"""The destruction pipeline on the local keystore, with usage read from a real DuckDB warehouse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from actions.audit_log import AuditLog
from actions.backends.base import KeySpec
from actions.backends.local import LocalKeystore
from actions.certificate import public_signer, verify
from actions.destruction import DestructionPipeline, DestructionRefused, warehouse_backups, warehouse_usage
from analytics.warehouse import open_warehouse
from kmo.settings import Settings

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _record_use(warehouse: Path, key_uri: str, when: datetime, op: str = "decrypt") -> None:
    con = open_warehouse(warehouse)
    con.execute(
        "INSERT INTO events (uid, time, source, provider, class_uid, activity_id, type_uid, op, operation, is_usage,"
        " success, key_uri, actor_principal, ingested_at) VALUES (?, ?, 'vault', 'local', 6003, 99, 600399, ?, ?,"
        " ?, true, ?, 'ops-backup', ?)",
        [f"u-{op}-{when.isoformat()}", when, op, op, op == "decrypt", key_uri, when],
    )
    con.close()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KMO_HOME", str(tmp_path / "home"))
    settings = Settings.from_env()
    store = LocalKeystore(tmp_path / "ks")
    audit = AuditLog(settings.home / "actions" / "audit.jsonl")
    pipeline = DestructionPipeline(
        settings.home, audit, warehouse_usage(settings), recent_days=30, backups=warehouse_backups(settings)
    )
    return settings, store, audit, pipeline


def test_recent_use_or_no_warehouse_refuses_unless_overridden(world) -> None:
    settings, store, _audit, pipeline = world
    store.generate(KeySpec(name="old", key_type="data", algorithm="AES-256"))
    with pytest.raises(DestructionRefused, match="no audit warehouse"):
        pipeline.propose(store, "old", proposer="p", reason="retired", now=NOW)
    _record_use(settings.warehouse, "local:old", NOW - timedelta(days=3))
    with pytest.raises(DestructionRefused, match="used 1 times in the last 30 days"):
        pipeline.propose(store, "old", proposer="p", reason="retired", now=NOW)
    assert pipeline.propose(store, "old", proposer="p", reason="retired", now=NOW + timedelta(days=40))
    overridden = pipeline.propose(
        store, "old", proposer="p", reason="compromised", override_recent_use="IR-42", now=NOW
    )
    assert overridden["usageCheck"] == {"days": 30, "uses": 1, "override": "IR-42"}


def test_dual_control_then_soak_then_certificate(world) -> None:
    settings, store, audit, pipeline = world
    store.generate(KeySpec(name="payments-2019", key_type="data", algorithm="AES-256"))
    store.rotate("payments-2019")
    _record_use(settings.warehouse, "local:other-key", NOW)  # a warehouse exists; this key is unused
    doc = pipeline.propose(store, "payments-2019", proposer="alice", reason="retired", now=NOW)
    pid = doc["id"]
    with pytest.raises(DestructionRefused, match="needs 2 custodian approvals"):
        pipeline.execute(pid, store, "alice", now=NOW)
    with pytest.raises(DestructionRefused, match="proposer cannot approve"):
        pipeline.approve(pid, "alice")
    pipeline.approve(pid, "bob")
    with pytest.raises(DestructionRefused, match="already approved"):
        pipeline.approve(pid, "bob")
    with pytest.raises(DestructionRefused, match="needs 2"):
        pipeline.execute(pid, store, "alice", now=NOW)
    assert pipeline.approve(pid, "carol")["status"] == "approved"

    scheduled = pipeline.execute(pid, store, "alice", now=NOW)
    assert scheduled["status"] == "scheduled" and pipeline.execute(pid, store, "alice")["status"] == "scheduled"
    assert store.describe("payments-2019").status == "pending-destruction"
    with pytest.raises(DestructionRefused, match="pending window ends"):
        pipeline.complete(pid, store, "alice", witness="dave", now=NOW + timedelta(days=1))
    done = pipeline.complete(pid, store, "alice", witness="dave", now=datetime.now(UTC) + timedelta(days=8))
    assert store.describe("payments-2019").status == "destroyed"
    assert "sealed" not in (store.dir / "payments-2019.json").read_text()
    cert = done["certificate"]
    assert cert["versions"] == [1, 2] and cert["witness"] == "dave"
    assert [a["custodian"] for a in cert["approvals"]] == ["bob", "carol"]
    assert verify(cert, public_signer(settings.home)) == []
    assert verify({**cert, "witness": "mallory"}, public_signer(settings.home))

    steps = [e.get("step") for e in audit.entries()]
    assert steps == ["proposed", "approved", "approved", "scheduled", "destroyed"]
    assert audit.verify() == []


def test_cancel_restores_the_schedule_and_stops_the_pipeline(world) -> None:
    _settings, store, _audit, pipeline = world
    store.generate(KeySpec(name="k", key_type="data", algorithm="AES-256"))
    pid = pipeline.propose(store, "k", proposer="a", reason="r", override_recent_use="test", now=NOW)["id"]
    pipeline.approve(pid, "b")
    pipeline.approve(pid, "c")
    pipeline.execute(pid, store, "a", now=NOW)
    assert pipeline.cancel(pid, store, "b", "still needed by batch jobs")["status"] == "cancelled"
    assert store.describe("k").status == "inactive" and store.describe("k").destroy_at is None
    with pytest.raises(DestructionRefused, match="cancelled"):
        pipeline.complete(pid, store, "a", witness="d", now=NOW + timedelta(days=30))


def test_usage_summary_reads_the_warehouse(world) -> None:
    from actions.compliance import usage_summary

    settings, *_ = world
    assert usage_summary(settings, ["local:a"], NOW) is None  # no warehouse: unknown, not zero
    _record_use(settings.warehouse, "local:a", NOW + timedelta(hours=1))
    _record_use(settings.warehouse, "local:b", NOW - timedelta(days=90))  # before the period
    con = open_warehouse(settings.warehouse)
    con.execute("UPDATE events SET op = 'rotate', is_usage = false WHERE key_uri = 'local:b'")
    con.execute(
        "INSERT INTO events (uid, time, source, provider, class_uid, activity_id, type_uid, op, operation, is_usage,"
        " success, key_uri, ingested_at) VALUES ('r1', ?, 'vault', 'local', 6003, 99, 600399, 'rotate', 'rotate',"
        " false, true, 'local:b', ?)",
        [NOW + timedelta(days=1), NOW],
    )
    con.close()
    assert usage_summary(settings, ["local:a", "local:b", "local:c"], NOW) == (1, ["local:b", "local:c"])


def test_backups_on_record_must_be_accounted_for_and_are_certified(world) -> None:
    """A destruction that leaves a backup behind destroys one copy: the warehouse lists them."""
    settings, store, _audit, pipeline = world
    store.generate(KeySpec(name="ledger", key_type="data", algorithm="AES-256"))
    _record_use(settings.warehouse, "local:ledger", NOW - timedelta(days=200), op="backup")
    _record_use(settings.warehouse, "local:ledger", NOW - timedelta(days=100), op="export")
    with pytest.raises(DestructionRefused, match=r"2 backup\(s\)/export\(s\) of local:ledger are on record"):
        pipeline.propose(store, "ledger", proposer="p", reason="retired", now=NOW)
    doc = pipeline.propose(
        store, "ledger", proposer="p", reason="retired", backups_covered="tape T-17 shredded, ticket CHG-9", now=NOW
    )
    assert [b["op"] for b in doc["backups"]] == ["backup", "export"] and doc["backups"][0]["actor"] == "ops-backup"
    pipeline.approve(doc["id"], "a")
    pipeline.approve(doc["id"], "b")
    pipeline.execute(doc["id"], store, "p")
    done = pipeline.complete(doc["id"], store, "p", witness="w", now=datetime.now(UTC) + timedelta(days=8))
    assert done["certificate"]["backupsCovered"] == "tape T-17 shredded, ticket CHG-9"
    assert len(done["certificate"]["backups"]) == 2
    assert verify(done["certificate"], public_signer(settings.home)) == []
    tampered = done["certificate"] | {"backupsCovered": "nothing to see"}
    assert verify(tampered, public_signer(settings.home)) == [
        "verificationHash does not match the certificate's content"
    ]
