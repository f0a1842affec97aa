"""The responder acts on findings only as the policy allows, once per finding and key, never destroying."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from actions.audit_log import AuditLog
from actions.backends.base import KeySpec
from actions.backends.local import LocalKeystore
from actions.key_names import key_name
from actions.responder import Responder, plan
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
    from actions.key_names import name_in_backend

    assert name_in_backend("pkcs11:token=t;object=k1") == "k1"
    assert name_in_backend("transit/keys/orders") == "orders"
    assert name_in_backend("alias/billing") == "alias/billing"


def test_handle_rotates_once_and_records_the_trigger(tmp_path: Path) -> None:
    store = LocalKeystore(tmp_path / "ks")
    store.generate(KeySpec(name="a", key_type="data", algorithm="AES-256"))
    store.generate(KeySpec(name="b", key_type="data", algorithm="AES-256"))
    audit = AuditLog(tmp_path / "audit.jsonl")
    policy = policy_with(
        {"auto_response": {"any.rotation_overdue": "rotate", "any.key_export": "disable"}, "response_mode": "enforce"}
    )
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


def _responder(tmp_path: Path, **policy: object) -> tuple[Responder, LocalKeystore, AuditLog]:
    store = LocalKeystore(tmp_path / "ks")
    for name in ("a", "b", "c", "d"):
        store.generate(KeySpec(name=name, key_type="data", algorithm="AES-256"))
    audit = AuditLog(tmp_path / "audit.jsonl")
    doc = {"auto_response": {"any.rotation_overdue": "rotate"}, **policy}
    return Responder(policy_with(doc), lambda p: store if p is Provider.LOCAL else None, audit), store, audit


def test_observe_is_the_default_and_touches_nothing(tmp_path: Path) -> None:
    responder, store, _ = _responder(tmp_path)
    assert [e["outcome"] for e in responder.handle(finding("any.rotation_overdue", ["local:a"]))] == ["observed"]
    assert responder.handle(finding("any.rotation_overdue", ["local:a"])) == []  # never twice
    assert store.describe("a").version == 1


def test_propose_writes_a_pending_action_for_a_human(tmp_path: Path) -> None:
    responder, store, _ = _responder(tmp_path, response_mode="propose")
    [entry] = responder.handle(finding("any.rotation_overdue", ["local:a"]))
    assert entry["outcome"] == "proposed" and entry["command"] == "kmo rotate --system local --key-id a"
    pending = list((tmp_path / "pending").glob("*.json"))
    assert len(pending) == 1 and oct(pending[0].stat().st_mode & 0o777) == "0o600"
    assert store.describe("a").version == 1


def test_rate_limit_degrades_to_proposals(tmp_path: Path) -> None:
    responder, store, _ = _responder(tmp_path, response_mode="enforce", response_max_actions_per_hour=2)
    outcomes = [
        e["outcome"]
        for i, k in enumerate("abc")
        for e in responder.handle(finding("any.rotation_overdue", [f"local:{k}"], uid=f"f{i}"), now=100.0 + i)
    ]
    assert outcomes == ["requested", "succeeded", "requested", "succeeded", "proposed"]
    assert store.describe("c").version == 1
    later = responder.handle(finding("any.rotation_overdue", ["local:d"], uid="f9"), now=100.0 + 3601)
    assert [e["outcome"] for e in later] == ["requested", "succeeded"]  # the hour has passed


def test_repeated_failures_open_the_circuit(tmp_path: Path) -> None:
    responder, store, _ = _responder(tmp_path, response_mode="enforce", response_max_consecutive_failures=2)
    for i in range(2):
        responder.handle(finding("any.rotation_overdue", [f"local:missing{i}"], uid=f"x{i}"))
    assert responder.circuit_open
    entries = responder.handle(finding("any.rotation_overdue", ["local:a"], uid="after"))
    assert [(e["outcome"], e["why"]) for e in entries] == [("observed", "circuit open after repeated failures")]
    assert store.describe("a").version == 1


def test_response_mode_is_validated() -> None:
    with pytest.raises(PolicyError, match="response_mode"):
        policy_with({"response_mode": "yolo"})
