"""HSM operations on SoftHSM2: health as coverage events, backup and restore under a trusted backup
key, the backup-key transport ceremony, replication to a second token and its consistency check."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from actions import hsm_backup
from actions.backends.base import InvalidKeyState, KeySpec, PermissionDenied, Unsupported
from actions.backends.pkcs11_hsm import Pkcs11Hsm
from actions.hsm_health import health
from tests.integration.conftest import SECOND_TOKEN, SO_PIN

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tokens(softhsm):
    module, token, pin = softhsm
    first = Pkcs11Hsm(module, token, pin, backup_capable=True)
    second = Pkcs11Hsm(module, SECOND_TOKEN, pin, backup_capable=True)
    with pytest.raises(PermissionDenied):
        hsm_backup.init_backup_key(first, "0000")
    made = hsm_backup.init_backup_key(first, SO_PIN)
    assert hsm_backup.init_backup_key(first, SO_PIN) == {**made, "created": False}  # idempotent
    shared = hsm_backup.share_backup_key(first, SO_PIN, second)
    assert shared["checkValue"] == made["checkValue"] and shared["oaepHash"] in ("SHA-256", "SHA-1")
    return first, second


def test_health_reports_the_token_and_never_the_pin(softhsm) -> None:
    module, token, pin = softhsm
    doc = health(Pkcs11Hsm(module, token, pin), fips_cert="(none: SoftHSM2)")
    assert doc["status"] == "ok" and doc["source"] == "hsm"
    assert doc["detail"]["manufacturer"] == "SoftHSM project" and "token_initialized" in doc["detail"]["flags"]
    assert pin not in json.dumps(doc)
    failing = health(Pkcs11Hsm(module, "no-such-token", pin))
    assert failing["status"] == "failing" and failing["detail"]["problems"][0].startswith("NoSuchToken")


def test_backup_and_restore_bring_back_the_same_key(tokens, tmp_path: Path) -> None:
    first, _second = tokens
    first.generate(KeySpec(name="ops-vault-master", key_type="master", algorithm="AES-256"))
    first.rotate("ops-vault-master")
    doc = hsm_backup.backup(first, "ops-vault-master")
    assert [v["version"] for v in doc["versions"]] == [1, 2] and all(v["checkValue"] for v in doc["versions"])
    before = hsm_backup._fingerprint(first, "ops-vault-master")
    Pkcs11Hsm(first.module, first.token_label, first._pin, allow_immediate_destroy=True).destroy("ops-vault-master")
    restored = hsm_backup.restore(first, doc)
    assert restored.versions == [1, 2] and hsm_backup._fingerprint(first, "ops-vault-master") == before
    assert restored.labels["wrap_with_trusted"] == "true" and restored.labels["sensitive"] == "true"
    tampered = json.loads(json.dumps(doc))
    tampered["key"] = "ops-vault-master-copy"
    wrapped = bytearray(base64.b64decode(tampered["versions"][0]["wrapped"]))
    wrapped[-1] ^= 1
    tampered["versions"][0]["wrapped"] = base64.b64encode(bytes(wrapped)).decode()
    with pytest.raises(InvalidKeyState, match="does not unwrap"):
        hsm_backup.restore(first, tampered)


def test_keys_not_made_for_backup_cannot_be_backed_up(tokens, softhsm) -> None:
    first, _ = tokens
    Pkcs11Hsm(*softhsm).generate(KeySpec(name="ops-no-backup", key_type="data", algorithm="AES-256"))
    with pytest.raises(Unsupported, match="KeyUnextractable"):
        hsm_backup.backup(first, "ops-no-backup")


def test_replication_and_its_consistency_check(tokens) -> None:
    first, second = tokens
    for algorithm in ("AES-256", "RSA-2048", "ECDSA-P256"):
        name = f"ops-repl-{algorithm}"
        first.generate(KeySpec(name=name, key_type="signing", algorithm=algorithm))
        assert hsm_backup.replicate(first, name, second).versions == [1]
        assert hsm_backup.consistency([first, second], name)["consistent"]
    first.rotate("ops-repl-AES-256")
    drift = hsm_backup.consistency([first, second], "ops-repl-AES-256")
    assert drift["problems"] == [f"v2 missing on {SECOND_TOKEN}"]
    hsm_backup.replicate(first, "ops-repl-AES-256", second)  # only the missing version is restored
    assert hsm_backup.consistency([first, second], "ops-repl-AES-256")["consistent"]
    with pytest.raises(Unsupported):  # a shared backup key restores; it does not take backups there
        hsm_backup.backup(second, "ops-repl-AES-256")


def test_kmo_hsm_commands_are_audited_and_copies_block_an_uncovered_destruction(
    tokens, softhsm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from kmo.cli import main

    module, token, pin = softhsm
    for var, value in {
        "KMO_HOME": str(tmp_path / "home"),
        "KMO_HSM_MODULE": module,
        "KMO_HSM_TOKEN": token,
        "KMO_HSM_PIN": pin,
        "KMO_HSM_TARGET_PIN": pin,
        "KMO_HSM_BACKUP_CAPABLE": "1",
    }.items():
        monkeypatch.setenv(var, value)
    args = ["generate", "--system", "hsm", "--key-id", "ops-cli", "--key-type", "data", "--algorithm", "AES-256"]
    assert main(args) == 0
    assert main(["hsm", "health"]) == 0
    capsys.readouterr()
    backup_file = tmp_path / "ops-cli.backup.json"
    assert main(["hsm", "backup", "--key", "ops-cli", "--out", str(backup_file)]) == 0
    assert oct(backup_file.stat().st_mode & 0o777) == "0o600"
    assert main(["hsm", "replicate", "--key", "ops-cli", "--to-token", SECOND_TOKEN]) == 0
    assert main(["hsm", "consistency", "--key", "ops-cli", "--tokens", f"{token},{SECOND_TOKEN}"]) == 0
    assert main(["hsm", "backup-key-init"]) == 2  # no SO PIN in the environment
    assert "KMO_HSM_SO_PIN is not set" in capsys.readouterr().err
    audit = (tmp_path / "home" / "actions" / "audit.jsonl").read_text()
    ops = [json.loads(line)["operation"] for line in audit.splitlines()]
    assert ops.count("hsm-backup") == 2 and ops.count("hsm-replicate") == 2 and pin not in audit

    propose = ["destroy", "propose", "--key", "ops-cli", "--system", "hsm", "--reason", "retired"]
    assert main([*propose, "--override-recent-use", "test"]) == 1
    assert "2 backup(s)/export(s) of pkcs11:token=kmo-test;object=ops-cli are on record" in capsys.readouterr().err
    covered = "backup file shredded; replica destroyed on kmo-test-2 (CHG-1)"
    assert main([*propose, "--override-recent-use", "test", "--backups-covered", covered]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [b["op"] for b in doc["backups"]] == ["hsm-backup", "hsm-replicate"]
    assert doc["backupsCovered"] == covered


def test_health_heartbeats_reach_the_warehouse(softhsm, settings, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from analytics.query import run_query
    from analytics.sink import run_sink
    from kmo.cli import main
    from tests.conftest import kmo_env

    module, token, pin = softhsm
    for var, value in kmo_env(settings).items():
        if var.startswith("KMO_"):
            monkeypatch.setenv(var, value)
    monkeypatch.setenv("KMO_HSM_MODULE", module)
    monkeypatch.setenv("KMO_HSM_TOKEN", token)
    monkeypatch.setenv("KMO_HSM_PIN", pin)
    assert main(["hsm", "health", "--publish"]) == 0
    monkeypatch.setenv("KMO_HSM_TOKEN", "gone-token")
    monkeypatch.setenv("KMO_HSM_PIN_GONE_TOKEN", pin)
    assert main(["hsm", "health", "--publish"]) == 1  # a failing token is reported, and published
    capsys.readouterr()
    run_sink(settings, until_idle=3)
    rows = run_query(
        settings, "SELECT status, detail->>'token' AS token FROM coverage WHERE source = 'hsm' ORDER BY time"
    ).to_pylist()
    assert [(r["status"], r["token"]) for r in rows] == [("ok", token), ("failing", "gone-token")]
    health_row = run_query(settings, "SELECT last_status FROM source_health WHERE source = 'hsm'").to_pylist()
    assert health_row == [{"last_status": "failing"}]
