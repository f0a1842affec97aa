"""Derived keys: the two KDFs against an independent implementation, and the keystore's derivation."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from actions.backends.base import BackendError, InvalidKeyState, KeySpec, Unsupported
from actions.backends.local import LocalKeystore
from actions.derivation import derive_material

KEY = bytes(range(32))


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def test_sp800_108_counter_mode_is_the_standards_construction() -> None:
    """K(1) = HMAC(KI, [1]_32 || Label || 0x00 || Context || [L]_32), L = 256 (SP 800-108r1 §4.1)."""
    fixed = b"kmo:data" + b"\x00" + b"tenant-7" + (256).to_bytes(4, "big")
    expected = _hmac(KEY, (1).to_bytes(4, "big") + fixed)
    assert derive_material("sp800-108", KEY, label=b"kmo:data", context=b"tenant-7") == expected


def test_hkdf_is_rfc_5869_with_no_salt() -> None:
    prk = _hmac(b"\x00" * 32, KEY)  # extract: an absent salt is HashLen zero bytes
    expected = _hmac(prk, b"kmo:data\x00tenant-7" + b"\x01")  # expand, one block
    assert derive_material("hkdf", KEY, label=b"kmo:data", context=b"tenant-7") == expected


def test_unknown_kdf_is_refused() -> None:
    with pytest.raises(ValueError, match="hkdf, sp800-108"):
        derive_material("md5", KEY, label=b"", context=b"")


@pytest.mark.parametrize("kdf", ["hkdf", "sp800-108"])
def test_derived_keys_are_reproducible_per_context_and_follow_the_parent(tmp_path: Path, kdf: str) -> None:
    ks = LocalKeystore(tmp_path / "ks")
    ks.generate(KeySpec(name="kdk", key_type="master", algorithm="AES-256"))
    a = ks.derive("kdk", KeySpec(name="tenant-7", key_type="data", algorithm="AES-256"), kdf=kdf, context="t7")
    again = ks.derive("kdk", KeySpec(name="tenant-7-dr", key_type="data", algorithm="AES-256"), kdf=kdf, context="t7")
    other = ks.derive("kdk", KeySpec(name="tenant-8", key_type="data", algorithm="AES-256"), kdf=kdf, context="t8")
    assert a.version == again.version == other.version == 1
    sealed = ks.encrypt("tenant-7", b"ledger row")
    assert ks.decrypt("tenant-7-dr", sealed) == b"ledger row"  # the same derivation, the same key
    with pytest.raises(BackendError, match="failed authentication"):
        ks.decrypt("tenant-8", sealed)
    same = ks.derive("kdk", KeySpec(name="tenant-7", key_type="data", algorithm="AES-256"), kdf=kdf, context="t7")
    assert same.version == 1  # idempotent
    with pytest.raises(InvalidKeyState, match="different key"):
        ks.derive("kdk", KeySpec(name="tenant-7", key_type="data", algorithm="AES-256"), kdf=kdf, context="t9")

    with pytest.raises(InvalidKeyState, match="rotate the parent first"):
        ks.rotate("tenant-7")
    ks.rotate("kdk")
    assert ks.rotate("tenant-7").version == 2
    assert ks.decrypt("tenant-7", sealed) == b"ledger row"  # v1 still decrypts
    doc = json.loads((tmp_path / "ks" / "tenant-7.json").read_text())
    assert [v["parent_version"] for v in doc["versions"]] == [1, 2]
    assert doc["derivation"] == {"from": "kdk", "kdf": kdf, "context": "t7", "label": "data", "parent_version": 2}


def test_only_active_aes_parents_and_aes_children(tmp_path: Path) -> None:
    ks = LocalKeystore(tmp_path / "ks")
    ks.generate(KeySpec(name="signer", key_type="signing", algorithm="ECDSA-P256"))
    ks.generate(KeySpec(name="kdk", key_type="master", algorithm="AES-256"))
    with pytest.raises(InvalidKeyState, match="active AES-256"):
        ks.derive("signer", KeySpec(name="x", key_type="data", algorithm="AES-256"), kdf="hkdf", context="c")
    with pytest.raises(Unsupported, match="derived keys are AES-256"):
        ks.derive("kdk", KeySpec(name="x", key_type="data", algorithm="RSA-2048"), kdf="hkdf", context="c")
    ks.disable("kdk")
    with pytest.raises(InvalidKeyState):
        ks.derive("kdk", KeySpec(name="x", key_type="data", algorithm="AES-256"), kdf="hkdf", context="c")


def test_kmo_derive_is_audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from kmo.cli import main

    monkeypatch.setenv("KMO_HOME", str(tmp_path / "home"))
    ks = str(tmp_path / "ks")
    assert (
        main(["generate", "--keystore", ks, "--key-id", "kdk", "--key-type", "master", "--algorithm", "AES-256"]) == 0
    )
    capsys.readouterr()
    assert main(["derive", "--keystore", ks, "--from", "kdk", "--key-id", "t1", "--context", "tenant-1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["keyInfo"]["keyId"] == "local:t1" and out["derivation"]["kdf"] == "sp800-108"
    entries = [json.loads(line) for line in (tmp_path / "home" / "actions" / "audit.jsonl").read_text().splitlines()]
    derive = [e for e in entries if e.get("operation") == "derive"]
    assert [e["outcome"] for e in derive] == ["requested", "succeeded"]
    assert derive[1]["generation"]["entropySource"] == "derived by sp800-108 from local:kdk"
    assert main(["derive", "--keystore", ks, "--from", "nope", "--key-id", "t2", "--context", "c"]) == 1
    assert main(["verify-audit"]) == 0
