"""The responder acts on findings only as the policy allows, once per finding and key, never destroying."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from actions.audit_log import AuditLog
from actions.backends.base import KeySpec
from actions.backends.local import LocalKeystore
from actions.responder import Responder, key_name, plan
from ingest.schema import Provider
from streams.findings import Action, AnalyticType, Category, Finding, Severity
from streams.policy import PolicyError, policy_with

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def finding(rule_id: str, keys: list[str], uid: str = "f-1") -> dict:
    return Finding(
        uid=uid,
        rule_id=rule_id,
        title="t",
        category=Category.POLICY_VIOLATION,
        severity=Severity.MEDIUM,
        action=Action.ROTATE,
        analytic_type=AnalyticType.RULE,
        message="m",
        keys=keys,
        actor=None,
        first_seen=NOW,
        last_seen=NOW,
    ).to_ocsf()


def test_policy_refuses_destruction_and_unknown_rules() -> None:
    with pytest.raises(PolicyError, match="'destroy' is not allowed"):
        policy_with({"auto_response": {"any.rotation_overdue": "destroy"}})
    with pytest.raises(PolicyError, match="unknown rule"):
        policy_with({"auto_response": {"no.such_rule": "rotate"}})
    assert policy_with({}).auto_response == {}


def test_plan_follows_the_policy_only() -> None:
    policy = policy_with({"auto_response": {"any.rotation_overdue": "rotate"}})
    assert [p.action for p in plan(finding("any.rotation_overdue", ["local:a", "local:b"]), policy)] == ["rotate"] * 2
    assert plan(finding("any.key_without_owner", ["local:a"]), policy) == []
    assert plan(finding("any.rotation_overdue", ["local:a"]), policy_with({})) == []


def test_key_names_for_every_adapter() -> None:
    assert key_name("vault:transit/keys/orders") == (Provider.VAULT, "orders")
    assert key_name("pkcs11:token=kmo-test;object=my%20key") == (Provider.HSM, "my key")
    arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert key_name(arn) == (Provider.AWS_KMS, arn)
    assert key_name("local:x") == (Provider.LOCAL, "x")
    with pytest.raises(ValueError):
        key_name("gcp-kms:projects/p/locations/l/keyRings/r/cryptoKeys/k")


def test_handle_rotates_once_and_records_the_trigger(tmp_path: Path) -> None:
    store = LocalKeystore(tmp_path / "ks")
    store.generate(KeySpec(name="a", key_type="data", algorithm="AES-256"))
    store.generate(KeySpec(name="b", key_type="data", algorithm="AES-256"))
    audit = AuditLog(tmp_path / "audit.jsonl")
    policy = policy_with({"auto_response": {"any.rotation_overdue": "rotate", "any.key_export": "disable"}})
    responder = Responder(policy, lambda p: store if p is Provider.LOCAL else None, audit)
    f = finding("any.rotation_overdue", ["local:a", "vault:transit/keys/elsewhere", "local:missing"])
    written = responder.handle(f)
    assert [(e["keyId"], e["outcome"]) for e in written] == [
        ("local:a", "requested"),
        ("local:a", "succeeded"),
        ("vault:transit/keys/elsewhere", "skipped"),
        ("local:missing", "requested"),
        ("local:missing", "failed"),
    ]
    assert written[1]["trigger"] == "f-1" and written[1]["actor"] == "kmo-responder:any.rotation_overdue"
    assert store.describe("a").version == 2
    responder.handle(f)  # redelivered after a crash before the commit
    assert store.describe("a").version == 2
    responder.handle(finding("any.rotation_overdue", ["local:a"], uid="f-2"))  # a new finding: acts again
    assert store.describe("a").version == 3
    assert audit.verify() == []
    responder.handle(finding("any.key_export", ["local:b"], uid="f-3"))
    assert store.describe("b").status == "inactive"
