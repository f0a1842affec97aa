"""Requests in, responses out, every step in the audit log: against the local keystore."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from actions.audit_log import AuditLog
from actions.backends.base import KeyNotFound, KeySpec
from actions.backends.local import LocalKeystore
from actions.execute import execute
from actions.request import RequestError, schema
from kmo.cli import main


@pytest.fixture
def env(tmp_path: Path) -> tuple[LocalKeystore, AuditLog]:
    return LocalKeystore(tmp_path / "ks"), AuditLog(tmp_path / "audit.jsonl")


def _valid(response: dict) -> dict:
    jsonschema.validate(response, schema("response"))
    return response


def test_generate_then_rotate_then_inventory(env) -> None:
    store, audit = env
    gen = _valid(
        execute(
            {"operation": "generate", "keyType": "data", "algorithm": "AES-256", "rotationPolicy": {"maxAge": "30d"}},
            store,
            audit,
            actor="alice",
        )
    )
    key_id = gen["keyInfo"]["keyId"]
    assert gen["keyInfo"]["keyType"] == "data" and gen["keyInfo"]["version"] == 1
    assert "recommendations" not in gen  # 30d is within the data-key cryptoperiod
    rot = _valid(execute({"operation": "rotate", "keyId": key_id}, store, audit, actor="alice"))
    assert rot["rotationStatus"]["previousVersion"] == 1 and rot["rotationStatus"]["newVersion"] == 2
    assert rot["rotationStatus"]["rollbackAvailable"] is True
    inv = _valid(execute({"operation": "inventory"}, store, audit, actor="bob"))
    assert inv["auditReport"]["keysInventoried"] == 1 and inv["keys"][0]["version"] == 2

    entries = audit.entries()
    assert [e["outcome"] for e in entries] == ["requested", "succeeded"] * 3
    assert entries[1]["keyId"] == key_id and entries[3]["version"] == 2
    assert entries[-1]["actor"] == "bob"
    assert audit.verify() == []


def test_recommendations_name_the_cryptoperiod(env) -> None:
    store, audit = env
    none = execute({"operation": "generate", "keyType": "api", "algorithm": "Ed25519"}, store, audit, actor="a")
    assert none["recommendations"] == ["no rotationPolicy.maxAge given; policy for api keys is 90d"]
    long = execute(
        {"operation": "generate", "keyType": "data", "algorithm": "AES-256", "rotationPolicy": {"maxAge": "400d"}},
        store,
        audit,
        actor="a",
    )
    assert "400d exceeds the 30d cryptoperiod" in long["recommendations"][0]


def test_invalid_and_unbuilt_requests_are_refused_and_audited(env) -> None:
    store, audit = env
    with pytest.raises(RequestError, match="algorithm"):
        execute({"operation": "generate", "keyType": "data", "algorithm": "DES"}, store, audit, actor="a")
    with pytest.raises(RequestError, match="'colour' was unexpected"):
        execute({"operation": "inventory", "colour": "red"}, store, audit, actor="a")
    assert [e["outcome"] for e in audit.entries()] == ["refused", "refused"]
    assert store.list_keys() == []


def test_backend_failure_is_audited_as_failed(env) -> None:
    store, audit = env
    with pytest.raises(KeyNotFound):
        execute({"operation": "rotate", "keyId": "local:missing"}, store, audit, actor="a")
    assert [e["outcome"] for e in audit.entries()] == ["requested", "failed"]
    assert "KeyNotFound" in audit.entries()[-1]["error"]


def test_no_key_material_in_the_response_or_the_audit_log(env, tmp_path: Path) -> None:
    store, audit = env
    response = execute(
        {"operation": "generate", "keyType": "data", "algorithm": "AES-256", "keyId": "payments"},
        store,
        audit,
        actor="a",
    )
    name = response["keyInfo"]["keyId"].split(":")[-1]
    material = store._unseal(name, 1, store._load(name)["versions"][0])  # the real key bytes
    text = json.dumps(response) + (tmp_path / "audit.jsonl").read_text()
    for form in (material.hex(), base64.b64encode(material).decode(), base64.urlsafe_b64encode(material).decode()):
        assert form not in text


def test_kmo_run_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("KMO_HOME", str(tmp_path / "home"))
    request = tmp_path / "req.json"
    request.write_text(
        json.dumps(
            {"operation": "generate", "keyType": "signing", "algorithm": "ECDSA-P256", "keyManagementSystem": "vault"}
        )
    )
    assert main(["run", "--request", str(request), "--keystore", str(tmp_path / "ks"), "--actor", "carol"]) == 0
    out = _valid(json.loads(capsys.readouterr().out))
    assert out["keyInfo"]["algorithm"] == "ECDSA-P256"
    assert main(["verify-audit"]) == 0

    capsys.readouterr()
    monkeypatch.delenv("KMO_AZURE_VAULT_URL", raising=False)
    request.write_text(json.dumps({"operation": "inventory", "keyManagementSystem": "azure-keyvault"}))
    assert main(["run", "--request", str(request)]) == 2
    assert "azure-keyvault needs KMO_AZURE_VAULT_URL" in capsys.readouterr().err

    for var in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    request.write_text(json.dumps({"operation": "inventory", "keyManagementSystem": "aws-kms"}))
    assert main(["run", "--request", str(request)]) == 2
    assert "aws-kms is not configured: You must specify a region" in capsys.readouterr().err

    request.write_text("{not json")
    assert main(["run", "--request", str(request)]) == 2
    assert "cannot read request" in capsys.readouterr().err


def test_destroy_pipeline_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """kmo run proposes; two other custodians approve; execute soaks; complete certifies."""
    import time

    monkeypatch.setenv("KMO_HOME", str(tmp_path / "home"))
    ks = str(tmp_path / "ks")
    LocalKeystore(Path(ks)).generate(KeySpec(name="old", key_type="data", algorithm="AES-256"))
    request = tmp_path / "req.json"
    request.write_text(json.dumps({"operation": "destroy", "keyId": "local:old", "destructionVerification": True}))
    assert main(["run", "--request", str(request), "--keystore", ks]) == 2  # no warehouse: use unknown
    assert "cannot confirm the key is unused" in capsys.readouterr().err

    def kmo(*argv: str) -> dict:
        assert main(["destroy", *argv]) == 0, capsys.readouterr().err
        return json.loads(capsys.readouterr().out)

    pid = kmo(
        "propose",
        "--key",
        "old",
        "--system",
        "local",
        "--keystore",
        ks,
        "--reason",
        "retired",
        "--override-recent-use",
        "no warehouse in this test",
        "--pending",
        "1s",
        "--actor",
        "alice",
    )["id"]
    assert main(["destroy", "execute", pid, "--actor", "alice"]) == 1
    assert "needs 2 custodian approvals" in capsys.readouterr().err
    kmo("approve", pid, "--actor", "bob")
    assert kmo("approve", pid, "--actor", "carol")["status"] == "approved"
    assert kmo("execute", pid, "--actor", "alice")["status"] == "scheduled"
    time.sleep(1.1)
    done = kmo("complete", pid, "--actor", "alice", "--witness", "dave")
    assert done["status"] == "destroyed"
    certificate = tmp_path / "cert.json"
    certificate.write_text(json.dumps(done["certificate"]))
    assert main(["verify-certificate", str(certificate)]) == 0
    assert main(["verify-audit"]) == 0
    assert main(["destroy", "approve"]) == 2
    capsys.readouterr()
    assert main(["destroy", "propose", "--key", "old", "--system", "local", "--reason", "r"]) == 1
    assert "the local keystore needs --keystore DIR" in capsys.readouterr().err


def _estate(store: LocalKeystore) -> None:
    store.generate(KeySpec(name="orders", key_type="data", algorithm="AES-256", labels={"owner": "payments"}))
    store.generate(KeySpec(name="partner-api", key_type="api", algorithm="Ed25519", labels={"owner": "edge"}))
    store.generate(KeySpec(name="nobody", key_type="signing", algorithm="ECDSA-P256"))


def test_policy_check_runs_the_stream_rules_per_framework(env) -> None:
    store, audit = env
    _estate(store)
    later = datetime.now(UTC) + timedelta(days=40)  # the 30-day data key is now overdue
    out = _valid(
        execute(
            {"operation": "policy-check", "complianceFrameworks": ["PCI-DSS", "FIPS-140-3"]},
            store,
            audit,
            actor="a",
            now=later,
        )
    )
    status = out["complianceStatus"]
    assert status["framework"] == "PCI-DSS, FIPS-140-3" and status["compliant"] is False
    got = {(f["framework"], f["rule"], f["keyId"]) for f in status["findings"]}
    assert got == {
        ("PCI-DSS", "any.rotation_overdue", "local:orders"),
        ("PCI-DSS", "any.key_without_owner", "local:nobody"),
        ("FIPS-140-3", "module-validation", None),
    }
    assert all(f["control"] for f in status["findings"])
    # the same keys, today, one key, NIST only: nothing overdue and the owner is set
    today = execute({"operation": "policy-check", "keyId": "local:orders"}, store, audit, actor="a")
    assert today["complianceStatus"] == {"framework": "NIST", "compliant": True, "findings": []}


def test_audit_report_with_and_without_a_warehouse(env) -> None:
    store, audit = env
    _estate(store)
    later = datetime.now(UTC) + timedelta(days=40)
    seen: list = []

    def warehouse(uris: list[str], since: datetime) -> tuple[int, list[str]]:
        seen.append((sorted(uris), since))
        return 2, ["local:nobody"]

    out = _valid(
        execute(
            {"operation": "audit", "rotationPolicy": {"notifyBefore": "60d"}},
            store,
            audit,
            actor="a",
            now=later,
            warehouse=warehouse,
        )
    )
    report = out["auditReport"]
    assert report["keysInventoried"] == 3 and report["policyViolations"] == 2
    assert report["rotationsCompleted"] == 2 and report["unusedKeys"] == ["local:nobody"]
    assert [k["keyId"] for k in report["expiringKeys"]] == ["local:partner-api"]  # 90d key, due in ~50 days
    assert seen[0][0] == ["local:nobody", "local:orders", "local:partner-api"]
    assert seen[0][1] == later - timedelta(days=30)
    blind = _valid(execute({"operation": "audit"}, store, audit, actor="a", warehouse=lambda *_: None))
    assert "rotationsCompleted" not in blind["auditReport"] and "no audit warehouse" in blind["recommendations"][0]


def test_per_operation_commands_build_the_same_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("KMO_HOME", str(tmp_path / "home"))
    ks = ["--keystore", str(tmp_path / "ks")]

    def kmo(*argv: str) -> dict:
        assert main([*argv, *ks]) == 0, capsys.readouterr().err
        return _valid(json.loads(capsys.readouterr().out))

    gen = kmo("generate", "--key-type", "tls", "--algorithm", "RSA-2048", "--key-id", "edge", "--max-age", "365d")
    assert gen["keyInfo"]["keySize"] == 2048 and "recommendations" not in gen
    assert kmo("rotate", "--key-id", "local:edge")["rotationStatus"]["newVersion"] == 2
    assert kmo("inventory")["auditReport"]["keysInventoried"] == 1
    check = kmo("policy-check", "--framework", "PCI-DSS", "--framework", "SOC2")
    assert {f["rule"] for f in check["complianceStatus"]["findings"]} == {"any.key_without_owner"}
    assert kmo("audit", "--notify-before", "14d")["auditReport"]["policyViolations"] == 1
    with pytest.raises(SystemExit):
        main(["generate", "--key-type", "tls", "--algorithm", "DES", *ks])
    assert "invalid choice: 'DES'" in capsys.readouterr().err
