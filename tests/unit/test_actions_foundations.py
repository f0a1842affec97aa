"""Issue 5 foundations: the request/response interface, the local keystore, the audit chain and
destruction certificates. (The orchestrator that ties them to every backend is still to come.)"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from actions.audit_log import AuditLog
from actions.backends.base import BackendError, Capability, InvalidKeyState, KeySpec, KeyState, Unsupported, require
from actions.backends.local import LocalKeystore
from actions.certificate import issue, public_signer, signing_key, verify
from actions.request import RequestError, parse_duration, schema, validate_request


class TestRequests:
    def test_the_specifications_example_is_valid(self) -> None:
        example = {
            "operation": "rotate",
            "keyType": "data",
            "keyManagementSystem": "vault",
            "keyId": "prod-encryption-key",
            "rotationPolicy": {"maxAge": "90d", "autoRotate": True, "notifyBefore": "7d"},
        }
        assert validate_request(example) is example

    @pytest.mark.parametrize(
        ("doc", "message"),
        [
            ({}, "'operation' is a required property"),
            ({"operation": "explode"}, "use one of generate, rotate, destroy, audit, policy-check, inventory"),
            ({"operation": "generate", "algorithm": "RSA-1024"}, "algorithm: 'RSA-1024' is not allowed"),
            ({"operation": "generate", "keyTyp": "data"}, "'keyTyp' was unexpected"),
            (
                {"operation": "rotate", "rotationPolicy": {"maxAge": "90"}},
                "rotationPolicy.maxAge: '90' is not a duration",
            ),
            ({"operation": "rotate", "rotationPolicy": {"maxAge": "7d", "notifyBefore": "30d"}}, "shorter than maxAge"),
            ({"operation": "audit", "complianceFrameworks": ["NIST", "GDPR"]}, "complianceFrameworks.1: 'GDPR'"),
        ],
    )
    def test_errors_name_the_field_and_the_allowed_values(self, doc: dict, message: str) -> None:
        with pytest.raises(RequestError) as info:
            validate_request(doc)
        assert message in str(info.value)

    def test_key_ids_are_bounded_and_refused_without_being_echoed(self) -> None:
        # the longest real ids (Azure key URLs, GCP version names, PKCS#11 URIs) are a few hundred characters
        azure = "https://payments-kv.vault.azure.net/keys/db-tde/" + "0" * 32
        assert validate_request({"operation": "rotate", "keyId": azure})
        assert validate_request({"operation": "rotate", "keyId": "k" * 1024})
        for bad, why in [
            ("x" * 100_000, "keyId: 100000 characters, longer than the 1024 allowed"),
            ("", "keyId: 0 characters, shorter than the 1 allowed"),
            ("orders\x1b[2J\x1b[31mOK", "keyId: contains control characters"),
            ("orders\nseq=1 forged audit line", "keyId: contains control characters"),
        ]:
            with pytest.raises(RequestError) as info:
                validate_request({"operation": "rotate", "keyId": bad})
            assert info.value.problems == [why]
        with pytest.raises(RequestError) as info:
            validate_request({"operation": "rotate", "rotationPolicy": {"maxAge": "9" * 5000 + "d"}})
        assert len(str(info.value)) < 200

    @pytest.mark.parametrize(
        ("text", "delta"),
        [
            ("90d", timedelta(days=90)),
            ("12h", timedelta(hours=12)),
            ("2w", timedelta(weeks=2)),
            ("45m", timedelta(minutes=45)),
        ],
    )
    def test_durations(self, text: str, delta: timedelta) -> None:
        assert parse_duration(text) == delta

    @pytest.mark.parametrize("bad", ["90", "0d", "1.5d", "90 days", "-1d", "d", 90, None, "9999999d"])
    def test_durations_are_strict(self, bad: object) -> None:
        with pytest.raises(RequestError):
            parse_duration(bad)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalKeystore:
    return LocalKeystore(tmp_path_factory.mktemp("keystore") / "ks")


class TestLocalKeystore:
    @pytest.mark.parametrize("algorithm", ["AES-256", "RSA-2048", "ECDSA-P256", "ECDSA-P384", "Ed25519"])
    def test_generate_every_algorithm_and_describe_in_the_specifications_shape(
        self, store: LocalKeystore, algorithm: str
    ) -> None:
        info = store.generate(KeySpec(f"k-{algorithm.lower()}", "signing", algorithm))
        doc = {
            "operationId": "x",
            "operation": "generate",
            "timestamp": "2026-12-04T00:00:00Z",
            "keyInfo": info.to_schema(),
        }
        jsonschema.validate(doc, schema("response"))
        assert info.state is KeyState.ACTIVE and info.version == 1 and info.to_schema()["status"] == "active"
        assert store.generate(KeySpec(f"k-{algorithm.lower()}", "signing", algorithm)).ref == info.ref  # idempotent

    def test_files_are_private_and_hold_no_plaintext_material(self, store: LocalKeystore) -> None:
        store.generate(KeySpec("private", "data", "RSA-2048"))
        assert os.stat(store.dir).st_mode & 0o777 == 0o700
        for path in store.dir.iterdir():
            assert os.stat(path).st_mode & 0o777 == 0o600, path
        text = (store.dir / "private.json").read_text()
        assert "PRIVATE KEY" not in text and "MII" not in text  # no PEM, no base64 DER (it is sealed)

    def test_rotation_keeps_old_ciphertext_decryptable_and_rolls_back(self, store: LocalKeystore) -> None:
        store.generate(KeySpec("payments", "data", "AES-256"))
        old = store.encrypt("payments", b"card 4111", b"tenant=a")
        rotated = store.rotate("payments")
        assert rotated.version == 2 and rotated.versions == [1, 2]
        new = store.encrypt("payments", b"card 4111", b"tenant=a")
        assert new.startswith(b"kmo:v2:") and store.decrypt("payments", old, b"tenant=a") == b"card 4111"
        assert store.rollback("payments", 1).version == 1
        with pytest.raises(BackendError, match="failed authentication"):
            store.decrypt("payments", old, b"tenant=b")  # context is bound

    def test_state_machine_refuses_illegal_transitions(self, store: LocalKeystore) -> None:
        store.generate(KeySpec("lifecycle", "data", "AES-256"))
        assert store.disable("lifecycle").state is KeyState.SUSPENDED
        assert store.disable("lifecycle").state is KeyState.SUSPENDED  # idempotent
        scheduled = store.schedule_destroy("lifecycle", timedelta(days=30))
        assert scheduled.status == "pending-destruction" and scheduled.state is KeyState.DEACTIVATED
        assert store.schedule_destroy("lifecycle", timedelta(days=1)).destroy_at == scheduled.destroy_at
        with pytest.raises(InvalidKeyState):
            store.destroy("lifecycle")  # the pending window has not ended
        with pytest.raises(InvalidKeyState):
            store.enable("lifecycle")
        destroyed = store.destroy("lifecycle", now=datetime.now(UTC) + timedelta(days=31))
        assert destroyed.status == "destroyed"
        doc = json.loads((store.dir / "lifecycle.json").read_text())
        assert all("sealed" not in v for v in doc["versions"]), "destruction erases every version's material"
        with pytest.raises(InvalidKeyState):
            store.activate("lifecycle")  # destroyed is final

    def test_a_swapped_version_blob_does_not_decrypt(self, store: LocalKeystore) -> None:
        store.generate(KeySpec("swap", "data", "AES-256"))
        ciphertext = store.encrypt("swap", b"x")
        store.rotate("swap")
        path = store.dir / "swap.json"
        doc = json.loads(path.read_text())
        doc["versions"][0]["sealed"], doc["versions"][1]["sealed"] = (
            doc["versions"][1]["sealed"],
            doc["versions"][0]["sealed"],
        )
        doc["versions"][0]["nonce"], doc["versions"][1]["nonce"] = (
            doc["versions"][1]["nonce"],
            doc["versions"][0]["nonce"],
        )
        path.write_text(json.dumps(doc))
        with pytest.raises(BackendError, match="tampered"):
            store.decrypt("swap", ciphertext)

    def test_unsupported_operations_fail_before_any_call(self) -> None:
        class Narrow:
            system = "vault"
            capabilities = frozenset({Capability.ROTATE})

        with pytest.raises(Unsupported, match="does not support disable"):
            require(Narrow(), Capability.DISABLE, "k")


class TestAuditChain:
    def test_intact_chain_verifies_and_every_tampering_is_found(self, tmp_path: Path) -> None:
        log = AuditLog(tmp_path / "audit.jsonl")
        for i in range(5):
            log.append({"operation": "rotate", "key": f"local:k{i}", "result": "ok"})
        assert log.verify() == [] and os.stat(log.path).st_mode & 0o777 == 0o600
        lines = log.path.read_text().splitlines()

        edited = [*lines]
        edited[2] = edited[2].replace('"ok"', '"failed"')
        log.path.write_text("\n".join(edited) + "\n")
        assert any("edited" in p.reason for p in log.verify())

        log.path.write_text("\n".join(lines[:2] + lines[3:]) + "\n")  # removed
        assert log.verify()

        log.path.write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")  # reordered
        assert log.verify()


class TestCertificates:
    def test_issue_verify_and_tamper(self, tmp_path: Path) -> None:
        key = signing_key(tmp_path)
        assert os.stat(tmp_path / "keys" / "certificate-signing.pem").st_mode & 0o777 == 0o600
        cert = issue(
            key,
            {
                "keyId": "local:k",
                "versions": [1, 2],
                "destroyedAt": "2026-12-04T00:00:00Z",
                "method": "crypto-erase",
                "providerProof": {"state": "destroyed"},
                "approvals": ["alice", "bob"],
                "witness": "carol",
            },
        )
        trusted = public_signer(tmp_path)
        assert verify(cert, trusted) == []
        assert verify({**cert, "witness": "mallory"}, trusted)
        forged = issue(
            signing_key(tmp_path / "other"),
            {
                k: cert[k]
                for k in ("keyId", "versions", "destroyedAt", "method", "providerProof", "approvals", "witness")
            },
        )
        assert verify(forged) == []  # integrity holds on its own ...
        assert "signed by a key other than kmo's" in verify(forged, trusted)  # ... but not kmo's signature


def test_verify_commands(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {"KMO_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append({"operation": "generate", "key": "local:a"})
    log.append({"operation": "rotate", "key": "local:a"})
    kmo = [sys.executable, "-m", "kmo.cli"]
    ok = subprocess.run([*kmo, "verify-audit", str(log.path)], env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "intact" in ok.stderr
    log.path.write_text(log.path.read_text().replace("rotate", "destroy"))
    bad = subprocess.run([*kmo, "verify-audit", str(log.path)], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "edited" in bad.stdout

    cert = issue(
        signing_key(tmp_path / "home"),
        {
            "keyId": "local:a",
            "versions": [1],
            "destroyedAt": "2026-12-04T00:00:00Z",
            "method": "crypto-erase",
            "providerProof": {},
            "approvals": ["a", "b"],
            "witness": "c",
        },
    )
    (tmp_path / "cert.json").write_text(json.dumps(cert))
    good = subprocess.run(
        [*kmo, "verify-certificate", str(tmp_path / "cert.json")], env=env, capture_output=True, text=True, timeout=60
    )
    assert good.returncode == 0 and "signed by kmo" in good.stdout
    (tmp_path / "cert.json").write_text(json.dumps({**cert, "method": "none"}))
    forged = subprocess.run(
        [*kmo, "verify-certificate", str(tmp_path / "cert.json")], env=env, capture_output=True, text=True, timeout=60
    )
    assert forged.returncode == 1 and "does not match" in forged.stdout


def _append_many(path: str, writer: str) -> None:
    log = AuditLog(Path(path))
    for i in range(40):
        log.append({"operation": "test", "writer": writer, "i": i})


def test_concurrent_writers_keep_one_chain(tmp_path: Path) -> None:
    """The scheduler, the responder and the CLI append from separate processes."""
    import multiprocessing

    path = tmp_path / "audit.jsonl"
    procs = [multiprocessing.get_context("fork").Process(target=_append_many, args=(str(path), w)) for w in "abc"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    log = AuditLog(path)
    assert [e["seq"] for e in log.entries()] == list(range(1, 121))
    assert log.verify() == []


def test_an_entry_longer_than_one_read_chunk_keeps_the_chain(tmp_path: Path) -> None:
    """Found by the request fuzzer: a 100,000-character key id made the tail read parse half a
    line, and every later append failed. The chain must continue past any entry size."""
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append({"operation": "generate", "keyId": "x" * 200_000})
    log.append({"operation": "generate", "keyId": "short"})
    assert [e["seq"] for e in log.entries()] == [1, 2]
    assert log.verify() == []


def test_a_key_name_the_filesystem_cannot_hold_is_a_clean_refusal(store: LocalKeystore) -> None:
    """Found by the request fuzzer: a 300-character name reached os.stat and raised ENAMETOOLONG."""
    with pytest.raises(BackendError, match="at most 200 characters") as refused:
        store.generate(KeySpec("k" * 300, "data", "AES-256"))
    assert "k" * 41 not in str(refused.value)
