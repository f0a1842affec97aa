"""Distribution between systems: wrapped in transit, pre-activation on arrival, activated on purpose."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from actions.audit_log import AuditLog
from actions.backends.base import BackendError, InvalidKeyState, KeySpec
from actions.backends.local import LocalKeystore
from actions.distribution import WrapError, distribute, unwrap, wrap


def _rsa() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_the_envelope_opens_only_with_the_targets_key_and_not_when_tampered() -> None:
    key, pem = _rsa()
    material = secrets.token_bytes(32)
    envelope = wrap(pem, material)
    assert material not in envelope and unwrap(key, envelope) == material
    other, _ = _rsa()
    with pytest.raises(WrapError, match="wrong target or tampered"):
        unwrap(other, envelope)
    flipped = envelope[:-1] + bytes([envelope[-1] ^ 1])
    with pytest.raises(WrapError):
        unwrap(key, flipped)
    small = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(WrapError, match="must be RSA"):
        wrap(small.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), material)


def test_local_to_local_lands_pre_activation_and_decrypts_after_activation(tmp_path: Path) -> None:
    source, target = LocalKeystore(tmp_path / "a"), LocalKeystore(tmp_path / "b")
    source.generate(KeySpec(name="payments", key_type="data", algorithm="AES-256"))
    sealed = source.encrypt("payments", b"card batch 7")
    audit = AuditLog(tmp_path / "audit.jsonl")
    out = distribute(source, "payments", target, "payments-dr", audit, "ops")
    assert out["state"] == "pre-activation" and out["keyInfo"]["keyId"] == "local:payments-dr"
    with pytest.raises(InvalidKeyState):
        target.encrypt("payments-dr", b"x")  # not usable before activation
    target.activate("payments-dr")
    assert target.decrypt("payments-dr", sealed) == b"card batch 7"
    assert [e["outcome"] for e in audit.entries()] == ["requested", "succeeded"]
    written = (tmp_path / "audit.jsonl").read_text() + (tmp_path / "b" / "payments-dr.json").read_text()
    blob = json.loads((tmp_path / "a" / "payments.json").read_text())["versions"][0]["sealed"]
    assert blob not in written  # the target re-sealed it under its own master key
    with pytest.raises(InvalidKeyState, match="exists"):
        distribute(source, "payments", target, "payments-dr", audit, "ops")


def test_asymmetric_keys_travel_as_pkcs8_and_mislabelled_material_is_refused(tmp_path: Path) -> None:
    source, target = LocalKeystore(tmp_path / "a"), LocalKeystore(tmp_path / "b")
    source.generate(KeySpec(name="signer", key_type="signing", algorithm="ECDSA-P384"))
    out = distribute(source, "signer", target, "signer", AuditLog(tmp_path / "audit.jsonl"), "ops")
    assert out["keyInfo"]["algorithm"] == "ECDSA-P384"
    envelope = source.export_wrapped("signer", target.import_key())
    with pytest.raises(InvalidKeyState, match="not an RSA-2048 key"):
        target.import_wrapped(KeySpec(name="liar", key_type="signing", algorithm="RSA-2048"), envelope, source="x")
    with pytest.raises(BackendError, match="does not open"):
        target.import_wrapped(
            KeySpec(name="other", key_type="signing", algorithm="ECDSA-P384"), envelope[::-1], source="x"
        )


def test_kmo_distribute_and_activate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from kmo.cli import main

    monkeypatch.setenv("KMO_HOME", str(tmp_path / "home"))
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert main(["generate", "--keystore", a, "--key-id", "k", "--key-type", "data", "--algorithm", "AES-256"]) == 0
    capsys.readouterr()
    assert main(["distribute", "--keystore", a, "--key", "k", "--to", "local"]) == 2
    assert main(["distribute", "--keystore", a, "--key", "k", "--to", "local", "--target-keystore", b]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "pre-activation"
    assert main(["activate", "--keystore", b, "--key-id", "k"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "active"
    assert main(["activate", "--keystore", b, "--key-id", "k"]) == 0  # idempotent
    ops = [
        json.loads(line)["operation"]
        for line in (tmp_path / "home" / "actions" / "audit.jsonl").read_text().splitlines()
    ]
    assert ops.count("distribute") == 2 and ops.count("activate") == 4
    assert main(["verify-audit"]) == 0
