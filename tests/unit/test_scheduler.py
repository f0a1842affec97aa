"""Stored rotation policies and the scheduler that enforces them, on the local keystore."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from actions.audit_log import AuditLog
from actions.backends.local import LocalKeystore
from actions.execute import execute
from actions.scheduler import PolicyStore, Scheduler
from kmo.cli import main


@pytest.fixture
def world(tmp_path: Path):
    store = LocalKeystore(tmp_path / "ks")
    audit = AuditLog(tmp_path / "audit.jsonl")
    policies = PolicyStore(tmp_path / "home")
    scheduler = Scheduler(policies, lambda doc: store if doc["system"] == "local" else None, audit)
    return store, audit, policies, scheduler


def _generate(store, audit, policies, name: str, policy: dict) -> None:
    execute(
        {"operation": "generate", "keyType": "data", "algorithm": "AES-256", "keyId": name, "rotationPolicy": policy},
        store,
        audit,
        actor="a",
        policies=policies,
    )


def test_auto_rotation_with_notice_before(world) -> None:
    store, audit, policies, scheduler = world
    _generate(store, audit, policies, "orders", {"maxAge": "30d", "autoRotate": True, "notifyBefore": "7d"})
    stored = policies.all()["local:orders"]
    assert stored["maxAgeSeconds"] == 30 * 86400 and stored["autoRotate"] is True
    start = datetime.now(UTC)
    assert scheduler.tick(start + timedelta(days=10)) == []
    notices = scheduler.tick(start + timedelta(days=25))
    assert [(e["operation"], e["notice"], e["version"]) for e in notices] == [("rotation-notice", "due-soon", 1)]
    assert scheduler.tick(start + timedelta(days=26)) == []  # once per version
    rotated = scheduler.tick(start + timedelta(days=31))
    assert [(e["operation"], e["outcome"]) for e in rotated] == [("rotate", "requested"), ("rotate", "succeeded")]
    assert store.describe("orders").version == 2 and rotated[-1]["actor"] == "kmo-scheduler"
    assert scheduler.tick(datetime.now(UTC) + timedelta(days=1)) == []  # the new version is young
    assert audit.verify() == []


def test_without_auto_rotate_it_reports_overdue_once(world) -> None:
    store, audit, policies, scheduler = world
    _generate(store, audit, policies, "manual", {"maxAge": "30d"})
    later = datetime.now(UTC) + timedelta(days=40)
    assert [e["notice"] for e in scheduler.tick(later)] == ["overdue"]
    assert scheduler.tick(later) == []
    assert store.describe("manual").version == 1  # never rotated without autoRotate


def test_disabled_keys_and_unconfigured_systems(world) -> None:
    store, audit, policies, scheduler = world
    _generate(store, audit, policies, "paused", {"maxAge": "1d", "autoRotate": True})
    store.disable("paused")
    assert scheduler.tick(datetime.now(UTC) + timedelta(days=5)) == []
    docs = policies.all()
    docs["vault:transit/keys/x"] = {**docs["local:paused"], "system": "vault", "name": "x"}
    policies.path.write_text(json.dumps(docs))
    skipped = scheduler.tick(datetime.now(UTC) + timedelta(days=5))
    assert [(e["keyId"], e["outcome"]) for e in skipped] == [("vault:transit/keys/x", "skipped")]


def test_cli_generate_stores_the_policy_and_scheduler_runs_once(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("KMO_HOME", str(tmp_path / "home"))
    assert (
        main(
            [
                "generate",
                "--key-type",
                "data",
                "--algorithm",
                "AES-256",
                "--key-id",
                "k",
                "--max-age",
                "30d",
                "--auto-rotate",
                "--notify-before",
                "7d",
                "--keystore",
                str(tmp_path / "ks"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    stored = PolicyStore(tmp_path / "home").all()
    assert stored["local:k"]["keystore"] == str((tmp_path / "ks").absolute())
    assert main(["scheduler", "--once"]) == 0
    assert capsys.readouterr().out == ""  # a fresh key: nothing due
