"""Cloud KMS and Azure Key Vault beyond the shared contract: what each provider does differently
(GCP's primary version and fixed destroy duration, Azure's soft-delete and retention), each through
the real client library against the local fakes in tests/fakes. Verified only against those fakes:
no GCP or Azure endpoint is reachable from here."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from actions.audit_log import AuditLog
from actions.backends.azure_keyvault import AzureKeyVault, StaticToken
from actions.backends.base import InvalidKeyState, KeySpec, PermissionDenied, Unsupported
from actions.backends.gcp_kms import GcpKms
from actions.certificate import public_signer, verify
from actions.destruction import DestructionPipeline
from tests.fakes import azure_keyvault_server, gcp_kms_server
from tests.integration.test_backend_contract import _approved

pytestmark = pytest.mark.integration
RING = "projects/kmo-test/locations/europe-west1/keyRings/payments"


@pytest.fixture
def gcp() -> Iterator[tuple[gcp_kms_server.FakeCloudKms, object, str]]:
    with gcp_kms_server.serve() as (state, endpoint):
        yield state, gcp_kms_server.client(endpoint), endpoint


def test_gcp_rollback_points_the_primary_back_and_every_version_still_decrypts(gcp) -> None:
    _state, client, _ = gcp
    kms = GcpKms(client, RING)
    info = kms.generate(KeySpec(name="orders", key_type="data", algorithm="AES-256"))
    key = info.ref.uri
    old = client.encrypt(name=key, plaintext=b"under v1").ciphertext
    assert kms.rotate("orders").version == 2
    assert client.encrypt(name=key, plaintext=b"x").name.endswith("/cryptoKeyVersions/2")
    rolled = kms.rollback("orders", 1)
    assert rolled.version == 1 and rolled.versions == [1, 2]
    assert client.encrypt(name=key, plaintext=b"x").name.endswith("/cryptoKeyVersions/1")
    assert client.decrypt(name=key, ciphertext=old).plaintext == b"under v1"
    with pytest.raises(InvalidKeyState, match="version 7 is not an enabled version"):
        kms.rollback("orders", 7)


def test_gcp_signing_keys_rotate_without_a_primary_and_cannot_roll_back(gcp) -> None:
    state, client, _ = gcp
    kms = GcpKms(client, RING)
    kms.generate(KeySpec(name="release-signing", key_type="signing", algorithm="Ed25519"))
    assert kms.rotate("release-signing").version == 2  # the newest enabled version is current
    assert not any(verb.endswith(":updatePrimaryVersion") for _m, verb in state.calls)
    with pytest.raises(Unsupported, match="primary version"):
        kms.rollback("release-signing", 1)
    with pytest.raises(Unsupported, match="only symmetric"):
        kms.set_rotation_period("release-signing", timedelta(days=90))


def test_gcp_refuses_a_pending_window_longer_than_the_keys_destroy_duration(gcp) -> None:
    state, client, _ = gcp
    kms = GcpKms(client, RING, destroy_window=timedelta(days=7))
    kms.generate(KeySpec(name="short", key_type="data", algorithm="AES-256"))
    with pytest.raises(Unsupported, match="destroy-scheduled duration is 7 days"):
        kms.schedule_destroy("short", timedelta(days=30))
    assert not any(verb.endswith(":destroy") for _m, verb in state.calls)  # refused before any call
    assert kms.describe("short").status == "active"
    assert kms.set_rotation_period("short", timedelta(days=30)).status == "active"
    assert state.keys[f"{RING}/cryptoKeys/short"]["rotationPeriod"] == "2592000s"


def test_destruction_pipeline_on_gcp_certifies_the_tombstone_only_once_gcp_destroyed_it(gcp, tmp_path) -> None:
    state, client, _ = gcp
    kms = GcpKms(client, RING)
    kms.generate(KeySpec(name="retired", key_type="data", algorithm="AES-256"))
    kms.rotate("retired")
    pipeline = DestructionPipeline(tmp_path, AuditLog(tmp_path / "audit.jsonl"), lambda *_: None)
    pid = _approved(pipeline, kms, "retired")
    doc = pipeline.execute(pid, kms, "alice")
    assert doc["providerSchedule"] is True and kms.describe("retired").status == "pending-destruction"
    later = datetime.now(UTC) + timedelta(days=31)
    with pytest.raises(InvalidKeyState, match="still pending-destruction"):
        pipeline.complete(pid, kms, "alice", witness="dave", now=later)
    state.advance(31 * 86400)  # Cloud KMS destroys the scheduled versions when their time comes
    done = pipeline.complete(pid, kms, "alice", witness="dave", now=later)
    assert done["providerProof"] == "describe retired: status destroyed, versions [1, 2] hold no material"
    assert verify(done["certificate"], public_signer(tmp_path)) == []
    assert not state.material  # the fake dropped the material of both versions


def test_kmo_run_against_gcp_kms(gcp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from kmo.cli import main

    _state, _client, endpoint = gcp
    monkeypatch.setenv("KMO_HOME", str(tmp_path / "home"))
    request = tmp_path / "req.json"
    request.write_text(json.dumps({"operation": "inventory", "keyManagementSystem": "gcp-kms"}))
    monkeypatch.delenv("KMO_GCP_KEY_RING", raising=False)
    assert main(["run", "--request", str(request)]) == 2
    assert "gcp-kms needs KMO_GCP_KEY_RING" in capsys.readouterr().err
    monkeypatch.setenv("KMO_GCP_KEY_RING", RING)
    monkeypatch.setenv("KMO_GCP_KMS_ENDPOINT", endpoint)
    assert (
        main(["generate", "--system", "gcp-kms", "--key-id", "ledger", "--key-type", "data", "--algorithm", "AES-256"])
        == 0
    )
    key = json.loads(capsys.readouterr().out)["keyInfo"]["keyId"]
    assert key == f"{RING}/cryptoKeys/ledger"
    assert main(["rotate", "--system", "gcp-kms", "--key-id", key]) == 0
    assert json.loads(capsys.readouterr().out)["rotationStatus"]["rollbackAvailable"] is True
    assert main(["rotate", "--system", "gcp-kms", "--key-id", key, "--rollback-to", "1"]) == 0
    status = json.loads(capsys.readouterr().out)["rotationStatus"]
    assert (status["previousVersion"], status["newVersion"]) == (2, 1)
    audit = [json.loads(line) for line in (tmp_path / "home" / "actions" / "audit.jsonl").read_text().splitlines()]
    assert [e.get("rollbackTo") for e in audit if e.get("operation") == "rotate"] == [None, None, 1, 1]
    assert main(["verify-audit"]) == 0


# -- Azure ------------------------------------------------------------------------------------------


def test_azure_vault_refuses_symmetric_keys_before_any_call() -> None:
    with azure_keyvault_server.serve() as (vault, url, ca):
        akv = AzureKeyVault(azure_keyvault_server.client(url, ca))
        assert "AES-256" not in akv.algorithms and "Ed25519" not in akv.algorithms
        with pytest.raises(Unsupported, match="symmetric keys need a Managed HSM"):
            akv.generate(KeySpec(name="k", key_type="data", algorithm="AES-256"))
        assert vault.calls == []
        assert akv.generate(KeySpec(name="tls-edge", key_type="tls", algorithm="RSA-2048")).key_size == 2048


def test_azure_refuses_to_schedule_where_deletion_is_not_recoverable_or_retention_is_short() -> None:
    with azure_keyvault_server.serve(recoverable_days=None) as (vault, url, ca):
        akv = AzureKeyVault(azure_keyvault_server.client(url, ca))
        akv.generate(KeySpec(name="k", key_type="signing", algorithm="ECDSA-P256"))
        with pytest.raises(Unsupported, match="no soft-delete"):
            akv.schedule_destroy("k", timedelta(days=7))
        assert "k" in vault.keys
    with azure_keyvault_server.serve(recoverable_days=7) as (vault, url, ca):
        akv = AzureKeyVault(azure_keyvault_server.client(url, ca))
        akv.generate(KeySpec(name="k", key_type="signing", algorithm="ECDSA-P256"))
        with pytest.raises(Unsupported, match="keeps deleted keys 7 days"):
            akv.schedule_destroy("k", timedelta(days=10))
        assert akv.schedule_destroy("k", timedelta(days=7)).status == "pending-destruction"


def test_azure_permission_denied_and_the_token_stays_out_of_errors() -> None:
    with azure_keyvault_server.serve() as (vault, url, ca):
        akv = AzureKeyVault(azure_keyvault_server.client(url, ca))
        akv.generate(KeySpec(name="k", key_type="signing", algorithm="ECDSA-P384"))
        vault.denied = {"POST /keys/{name}/rotate"}
        with pytest.raises(PermissionDenied) as err:
            akv.rotate("k")
        assert azure_keyvault_server.TOKEN not in str(err.value) and akv.describe("k").version == 1
        assert azure_keyvault_server.TOKEN not in repr(StaticToken(azure_keyvault_server.TOKEN))


def test_destruction_pipeline_on_azure_waits_for_the_purge(tmp_path) -> None:
    with azure_keyvault_server.serve() as (vault, url, ca):
        akv = AzureKeyVault(azure_keyvault_server.client(url, ca))
        info = akv.generate(KeySpec(name="old-tls", key_type="tls", algorithm="RSA-2048"))
        akv.rotate("old-tls")
        pipeline = DestructionPipeline(tmp_path, AuditLog(tmp_path / "audit.jsonl"), lambda *_: None)
        pid = _approved(pipeline, akv, "old-tls")
        doc = pipeline.execute(pid, akv, "alice")
        assert doc["providerSchedule"] is True and "old-tls" in vault.deleted
        later = datetime.now(UTC) + timedelta(days=91)
        with pytest.raises(InvalidKeyState, match="still pending-destruction"):
            pipeline.complete(pid, akv, "alice", witness="dave", now=later)
        vault.purge("old-tls")  # Azure purges at scheduledPurgeDate
        done = pipeline.complete(pid, akv, "alice", witness="dave", now=later)
        assert done["providerProof"] == "describe old-tls: not found"
        assert done["certificate"]["keyId"] == info.ref.uri


def test_kmo_run_against_azure_keyvault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from kmo.cli import main

    with azure_keyvault_server.serve(managed_hsm=True) as (_vault, url, ca):
        monkeypatch.setenv("KMO_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("KMO_AZURE_VAULT_URL", url)
        monkeypatch.setenv("KMO_AZURE_ACCESS_TOKEN", azure_keyvault_server.TOKEN)
        monkeypatch.setenv("KMO_AZURE_CA_BUNDLE", ca)
        monkeypatch.setenv("KMO_AZURE_MANAGED_HSM", "1")
        args = ["generate", "--system", "azure-keyvault", "--key-id", "wrap", "--key-type", "master"]
        monkeypatch.setenv("KMO_AZURE_VERIFY_CHALLENGE_RESOURCE", "1")
        assert main([*args, "--algorithm", "AES-256"]) == 1  # the client will not answer a non-Azure challenge
        assert "challenge resource" in capsys.readouterr().err
        monkeypatch.setenv("KMO_AZURE_VERIFY_CHALLENGE_RESOURCE", "0")
        assert main([*args, "--algorithm", "AES-256", "--max-age", "90d", "--auto-rotate"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["keyInfo"]["keyId"] == "https://127.0.0.1/keys/wrap" and out["keyInfo"]["keySize"] == 256
        assert main(["rotate", "--system", "azure-keyvault", "--key-id", out["keyInfo"]["keyId"]]) == 0
        rotated = json.loads(capsys.readouterr().out)["rotationStatus"]
        assert (rotated["newVersion"], rotated["rollbackAvailable"]) == (2, False)
        assert main(["rotate", "--system", "azure-keyvault", "--key-id", "wrap", "--rollback-to", "1"]) == 1
        assert "newest version" in capsys.readouterr().err
        written = (tmp_path / "home" / "actions" / "audit.jsonl").read_text()
        assert azure_keyvault_server.TOKEN not in written
        assert base64.b64encode(azure_keyvault_server.TOKEN.encode()).decode() not in written


def test_a_rollback_is_refused_once_the_window_after_the_rotation_has_passed(gcp, tmp_path: Path) -> None:
    from actions.execute import execute

    state, client, _ = gcp
    kms = GcpKms(client, RING)
    kms.generate(KeySpec(name="late", key_type="data", algorithm="AES-256"))
    state.advance(-8 * 86400)  # the rotation happened eight days ago
    kms.rotate("late")
    state.advance(8 * 86400)
    doc = {"operation": "rotate", "keyId": "late"}
    with pytest.raises(InvalidKeyState, match="rollback window"):
        execute(doc, kms, AuditLog(tmp_path / "audit.jsonl"), actor="ops", rollback_to=1)
    assert kms.describe("late").version == 2


def test_distribution_into_cloud_kms_through_an_import_job(gcp, tmp_path: Path) -> None:
    """A local key wrapped for a Cloud KMS import job lands there as the same material (the fake keeps
    what it unwrapped, so the test compares it with the keystore's copy) and Cloud KMS uses it."""
    from actions.backends.local import LocalKeystore
    from actions.distribution import distribute

    state, client, _ = gcp
    local = LocalKeystore(tmp_path / "ks")
    local.generate(KeySpec(name="ledger-key", key_type="data", algorithm="AES-256"))
    kms = GcpKms(client, RING)
    out = distribute(local, "ledger-key", kms, "ledger-key", AuditLog(tmp_path / "audit.jsonl"), "ops")
    assert out["keyInfo"]["keyId"] == f"{RING}/cryptoKeys/ledger-key" and out["state"] == "active"
    version = f"{RING}/cryptoKeys/ledger-key/cryptoKeyVersions/1"
    doc = json.loads((tmp_path / "ks" / "ledger-key.json").read_text())
    assert state.material[version] == local._unseal("ledger-key", 1, doc["versions"][0])  # the same key arrived
    sealed = client.encrypt(name=out["keyInfo"]["keyId"], plaintext=b"imported").ciphertext
    assert client.decrypt(name=out["keyInfo"]["keyId"], ciphertext=sealed).plaintext == b"imported"
    assert state.keys[f"{RING}/cryptoKeys/ledger-key"]["importOnly"] is True
    with pytest.raises(InvalidKeyState, match="exists"):
        distribute(local, "ledger-key", kms, "ledger-key", AuditLog(tmp_path / "audit.jsonl"), "ops")
