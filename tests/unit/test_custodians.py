"""Custodians bound to signing keys: dual control that one person, a replay or a forgery cannot pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actions.audit_log import AuditLog
from actions.backends.base import KeySpec
from actions.backends.local import LocalKeystore
from actions.custodians import CustodianRefused, CustodianRegistry, Signed, keygen, sign, statement
from actions.destruction import DestructionPipeline, DestructionRefused, approval_statement


@pytest.fixture
def world(tmp_path: Path):
    audit = AuditLog(tmp_path / "audit.jsonl")
    registry = CustodianRegistry(tmp_path, audit)
    keys = {name: tmp_path / f"{name}.pem" for name in ("alice", "bob", "carol", "mallory")}
    public = {name: keygen(path) for name, path in keys.items()}
    registry.add("alice", public["alice"], "ops")
    registry.add("bob", public["bob"], "ops")
    return tmp_path, audit, registry, keys, public


def test_the_first_two_custodians_bootstrap_later_changes_need_an_endorsement(world) -> None:
    _home, audit, registry, keys, public = world
    assert oct(registry.path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(CustodianRefused, match="needs the signature of a custodian"):
        registry.add("carol", public["carol"], "ops")
    with pytest.raises(CustodianRefused, match="one person, one custodian"):
        registry.add("bob2", public["bob"], "ops")
    forged = Signed("alice", sign(keys["mallory"], registry.change_statement("add", "carol", public["carol"])))
    with pytest.raises(CustodianRefused, match="does not verify"):
        registry.add("carol", public["carol"], "ops", forged)
    good = Signed("alice", sign(keys["alice"], registry.change_statement("add", "carol", public["carol"])))
    registry.add("carol", public["carol"], "ops", good)
    assert sorted(registry.load()) == ["alice", "bob", "carol"]
    own = Signed("carol", sign(keys["carol"], registry.change_statement("remove", "carol", None)))
    with pytest.raises(CustodianRefused, match="to themselves"):
        registry.remove("carol", "ops", own)
    registry.remove(
        "carol", "ops", Signed("bob", sign(keys["bob"], registry.change_statement("remove", "carol", None)))
    )
    with pytest.raises(CustodianRefused, match="at least 2"):
        registry.remove(
            "bob", "ops", Signed("alice", sign(keys["alice"], registry.change_statement("remove", "bob", None)))
        )
    changes = [e for e in audit.entries() if e.get("operation") == "custodian-change"]
    assert [(e["change"], e["custodian"]) for e in changes] == [
        ("add", "alice"),
        ("add", "bob"),
        ("add", "carol"),
        ("remove", "carol"),
    ]
    assert audit.verify() == []


def test_destruction_needs_two_valid_signatures_and_refuses_one_person_replays_and_forgeries(world) -> None:
    home, audit, registry, keys, public = world
    registry.add(
        "carol",
        public["carol"],
        "ops",
        Signed("alice", sign(keys["alice"], registry.change_statement("add", "carol", public["carol"]))),
    )
    ks = LocalKeystore(home / "ks")
    for name in ("old", "other"):
        ks.generate(KeySpec(name=name, key_type="data", algorithm="AES-256"))
    pipeline = DestructionPipeline(home, audit, lambda *_: None)
    first = pipeline.propose(ks, "old", proposer="dave", reason="retired", override_recent_use="test")
    second = pipeline.propose(ks, "other", proposer="dave", reason="retired", override_recent_use="test")

    def signed_by(key: str, approver: str, doc: dict) -> str:
        return sign(keys[key], approval_statement(doc, approver))

    with pytest.raises(DestructionRefused, match="must be signed"):
        pipeline.approve(first["id"], "bob")
    pipeline.approve(first["id"], "bob", signature=signed_by("bob", "bob", first))
    with pytest.raises(DestructionRefused, match="already approved"):  # one person cannot approve twice
        pipeline.approve(first["id"], "bob", signature=signed_by("bob", "bob", first))
    with pytest.raises(DestructionRefused, match="does not verify"):  # bob signing as carol
        pipeline.approve(first["id"], "carol", signature=signed_by("bob", "carol", first))
    with pytest.raises(DestructionRefused, match="does not verify"):  # forged by someone outside
        pipeline.approve(first["id"], "carol", signature=signed_by("mallory", "carol", first))
    with pytest.raises(DestructionRefused, match="not a registered custodian"):
        pipeline.approve(first["id"], "mallory", signature=signed_by("mallory", "mallory", first))
    replayed = first["approvals"] if first["approvals"] else pipeline.load(first["id"])["approvals"]
    with pytest.raises(DestructionRefused, match="does not verify"):  # bob's approval of one proposal, replayed
        pipeline.approve(second["id"], "bob", signature=replayed[0]["signature"])
    assert pipeline.load(first["id"])["status"] == "awaiting-approval"
    done = pipeline.approve(first["id"], "carol", signature=signed_by("carol", "carol", first))
    assert done["status"] == "approved" and [a["custodian"] for a in done["approvals"]] == ["bob", "carol"]
    refusals = [e for e in audit.entries() if e.get("outcome") == "refused"]
    assert len(refusals) == 5 and all("signature" not in e for e in refusals)


def test_key_ceremonies_are_signed_by_the_custodians_present(world) -> None:
    _home, audit, registry, keys, _public = world
    present = ["alice", "bob", "auditor-eve"]
    message = statement(
        "kmo-key-ceremony", keyId="pkcs11:token=prod;object=root", action="generated", present=sorted(present)
    )
    with pytest.raises(CustodianRefused, match="2 different custodians"):
        registry.record_ceremony(
            "pkcs11:token=prod;object=root",
            "generated",
            present,
            [Signed("alice", sign(keys["alice"], message))],
            "ops",
        )
    with pytest.raises(CustodianRefused, match="does not verify"):
        registry.record_ceremony(
            "pkcs11:token=prod;object=root",
            "generated and split",  # not what was signed
            present,
            [Signed("alice", sign(keys["alice"], message)), Signed("bob", sign(keys["bob"], message))],
            "ops",
        )
    entry = registry.record_ceremony(
        "pkcs11:token=prod;object=root",
        "generated",
        present,
        [Signed("alice", sign(keys["alice"], message)), Signed("bob", sign(keys["bob"], message))],
        "ops",
    )
    assert entry["operation"] == "key-ceremony" and entry["present"] == sorted(present)
    assert audit.verify() == []


def test_cli_custodians_and_a_signed_approval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from kmo.cli import main

    monkeypatch.setenv("KMO_HOME", str(tmp_path / "home"))
    for who in ("alice", "bob"):
        assert main(["custodian", "keygen", "--out", str(tmp_path / f"{who}.pem")]) == 0
        public = json.loads(capsys.readouterr().out)["publicKey"]
        assert main(["custodian", "add", who, "--public-key", public]) == 0
        capsys.readouterr()
    ks = str(tmp_path / "ks")
    assert main(["generate", "--keystore", ks, "--key-id", "old", "--key-type", "data", "--algorithm", "AES-256"]) == 0
    capsys.readouterr()
    propose = ["destroy", "propose", "--key", "old", "--system", "local", "--keystore", ks, "--reason", "retired"]
    assert main([*propose, "--override-recent-use", "test", "--actor", "dave"]) == 0
    pid = json.loads(capsys.readouterr().out)["id"]
    assert main(["destroy", "approve", pid, "--actor", "alice"]) == 1
    assert "must be signed" in capsys.readouterr().err
    assert main(["destroy", "approve", pid, "--actor", "alice", "--signing-key", str(tmp_path / "bob.pem")]) == 1
    assert main(["destroy", "approve", pid, "--actor", "alice", "--signing-key", str(tmp_path / "alice.pem")]) == 0
    assert main(["destroy", "approve", pid, "--actor", "bob", "--signing-key", str(tmp_path / "bob.pem")]) == 0
    capsys.readouterr()
    assert main(["destroy", "status", pid]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "approved"
    assert main(["custodian", "add", "carol", "--public-key", "AAAA"]) == 1
    assert main(["verify-audit"]) == 0
