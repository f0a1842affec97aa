"""One contract, all six backends: the local keystore, Vault/OpenBao transit (a real dev server), AWS KMS
(moto's server over HTTP), PKCS#11 (SoftHSM2), and Cloud KMS and Azure Key Vault (the real client
libraries against local fakes of their documented APIs, tests/fakes). A backend that passes behaves
the same to the orchestrator wherever the key lives."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from actions.backends.aws_kms import AwsKms
from actions.backends.azure_keyvault import AzureKeyVault
from actions.backends.base import (
    ALGORITHMS,
    Capability,
    InvalidKeyState,
    KeyNotFound,
    KeySpec,
    PermissionDenied,
    RefusesUndeclared,
    Unsupported,
)
from actions.backends.gcp_kms import GcpKms
from actions.backends.local import LocalKeystore
from actions.backends.pkcs11_hsm import Pkcs11Hsm
from actions.backends.vault_transit import VaultTransit
from actions.request import schema
from tests.integration.test_vault_live import run_openbao

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def openbao_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    with run_openbao(tmp_path_factory.mktemp("bao")) as (client, _audit, _addr, _proc):
        client.sys.enable_secrets_engine("transit")
        yield client


@pytest.fixture(scope="module")
def kms_client() -> Iterator[object]:
    """AWS KMS as moto's server speaks it, over real HTTP, to an unchanged boto3 client."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield boto3.client(
            "kms",
            endpoint_url=f"http://{host}:{port}",
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
    finally:
        server.stop()


@pytest.fixture(scope="module")
def gcp_kms() -> Iterator[tuple[object, object]]:
    """Cloud KMS as the local fake speaks its REST API, to the real google-cloud-kms client."""
    from tests.fakes import gcp_kms_server

    with gcp_kms_server.serve() as (state, endpoint):
        yield state, gcp_kms_server.client(endpoint)


@pytest.fixture(scope="module")
def azure_hsm() -> Iterator[tuple[object, object]]:
    """A Managed HSM as the local HTTPS fake speaks it (challenge included), to the real KeyClient."""
    from tests.fakes import azure_keyvault_server

    with azure_keyvault_server.serve(managed_hsm=True) as (state, url, ca):
        yield state, azure_keyvault_server.client(url, ca)


KEY_RING = "projects/kmo-test/locations/global/keyRings/contract"


@pytest.fixture(params=["local", "vault", "aws", "hsm", "gcp", "azure"])
def backend(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "local":
        return LocalKeystore(tmp_path / "ks")
    if request.param == "gcp":
        return GcpKms(request.getfixturevalue("gcp_kms")[1], KEY_RING)
    if request.param == "azure":
        return AzureKeyVault(request.getfixturevalue("azure_hsm")[1], managed_hsm=True)
    if request.param == "aws":
        return AwsKms(request.getfixturevalue("kms_client"))
    if request.param == "hsm":
        return Pkcs11Hsm(*request.getfixturevalue("softhsm"))
    return VaultTransit(request.getfixturevalue("openbao_client"))


def _name(request: pytest.FixtureRequest) -> str:
    return "k-" + request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[-40:]


def test_generate_describe_list_in_the_specifications_shape(backend, request: pytest.FixtureRequest) -> None:
    import jsonschema

    name = _name(request)
    info = backend.generate(KeySpec(name=name, key_type="data", algorithm="AES-256"))
    assert info.algorithm == "AES-256" and info.key_size == 256 and info.version == 1
    assert info.status == "active"
    described = backend.describe(name)
    assert described.ref == info.ref and described.version == 1
    assert info.ref in {k.ref for k in backend.list_keys()}
    jsonschema.validate(info.to_schema(), schema("response")["properties"]["keyInfo"])


def test_generate_is_idempotent_and_refuses_a_different_algorithm(backend, request: pytest.FixtureRequest) -> None:
    name = _name(request)
    first = backend.generate(KeySpec(name=name, key_type="data", algorithm="AES-256"))
    again = backend.generate(KeySpec(name=name, key_type="data", algorithm="AES-256"))
    assert again.version == first.version == 1
    with pytest.raises(InvalidKeyState):
        backend.generate(KeySpec(name=name, key_type="signing", algorithm="ECDSA-P256"))


def test_rotate_adds_a_version(backend, request: pytest.FixtureRequest) -> None:
    name = _name(request)
    backend.generate(KeySpec(name=name, key_type="data", algorithm="AES-256"))
    rotated = backend.rotate(name)
    assert rotated.version == 2 and rotated.versions == [1, 2]
    if str(backend.system) != "hsm":  # PKCS#11 records no creation times
        assert rotated.current_since is not None and rotated.created_at is not None
        assert rotated.current_since >= rotated.created_at
    assert backend.describe(name).version == 2


def test_missing_key_is_key_not_found(backend) -> None:
    with pytest.raises(KeyNotFound):
        backend.describe("no-such-key-anywhere")
    with pytest.raises(KeyNotFound):
        backend.rotate("no-such-key-anywhere")


def test_undeclared_operations_fail_before_any_provider_call(backend, request: pytest.FixtureRequest) -> None:
    for capability, call in [
        (Capability.DISABLE, lambda: backend.disable("x")),
        (Capability.ENABLE, lambda: backend.enable("x")),
        (Capability.ROLLBACK, lambda: backend.rollback("x", 1)),
        (Capability.SCHEDULE_DESTROY, lambda: backend.schedule_destroy("x", timedelta(days=7))),
        (Capability.CANCEL_DESTROY, lambda: backend.cancel_destroy("x")),
    ]:
        if capability in backend.capabilities:
            # a declared capability must be implemented, not left to the refusing default
            method = str(capability)  # the contract's method names are the capability names
            assert getattr(type(backend), method) is not getattr(RefusesUndeclared, method)
            continue
        with pytest.raises(Unsupported, match=str(capability)):
            call()


def test_transit_destroy_is_refused_unless_the_orchestrator_allows_it(openbao_client, request) -> None:
    guarded = VaultTransit(openbao_client)
    name = _name(request)
    guarded.generate(KeySpec(name=name, key_type="data", algorithm="AES-256"))
    with pytest.raises(Unsupported, match="dual-control"):
        guarded.destroy(name)
    assert guarded.describe(name).status == "active"
    destroyed = VaultTransit(openbao_client, allow_immediate_destroy=True).destroy(name)
    assert destroyed.status == "destroyed"
    with pytest.raises(KeyNotFound):
        guarded.describe(name)


def test_unknown_algorithm_is_unsupported_on_transit(openbao_client) -> None:
    transit = VaultTransit(openbao_client)
    assert "AES-256" in transit.algorithms
    with pytest.raises(Unsupported):
        transit.generate(KeySpec(name="x", key_type="data", algorithm="AES-128"))


def test_kmo_run_against_openbao(openbao_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """The specification's requests through ``kmo run`` to a real transit engine; the token stays out."""
    import json

    import jsonschema

    from kmo.cli import main

    monkeypatch.setenv("KMO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VAULT_ADDR", openbao_client.url)
    monkeypatch.setenv("VAULT_TOKEN", "root-test")
    request = tmp_path / "req.json"

    def run(doc: dict) -> dict:
        request.write_text(json.dumps(doc))
        assert main(["run", "--request", str(request), "--actor", "ops"]) == 0
        out = json.loads(capsys.readouterr().out)
        jsonschema.validate(out, schema("response"))
        return out

    gen = run(
        {
            "operation": "generate",
            "keyType": "data",
            "algorithm": "AES-256",
            "keyManagementSystem": "vault",
            "keyId": "orders",
            "rotationPolicy": {"maxAge": "30d", "autoRotate": True},
        }
    )
    assert gen["keyInfo"]["keyId"] == "vault:transit/keys/orders"
    assert openbao_client.secrets.transit.read_key("orders")["data"]["auto_rotate_period"] == 30 * 24 * 3600
    rot = run({"operation": "rotate", "keyId": gen["keyInfo"]["keyId"], "keyManagementSystem": "vault"})
    assert rot["rotationStatus"] == {
        **rot["rotationStatus"],
        "previousVersion": 1,
        "newVersion": 2,
        "rollbackAvailable": False,
    }
    inv = run({"operation": "inventory", "keyManagementSystem": "vault"})
    assert "vault:transit/keys/orders" in {k["keyId"] for k in inv["keys"]}
    audit_text = (tmp_path / "home" / "actions" / "audit.jsonl").read_text()
    assert audit_text.count('"succeeded"') == 3 and "root-test" not in audit_text
    assert main(["verify-audit"]) == 0


def test_disable_enable_and_scheduled_destruction(backend, request: pytest.FixtureRequest) -> None:
    """For backends that declare the reversible lifecycle: each step is idempotent and state-checked."""
    name = _name(request)
    if Capability.SCHEDULE_DESTROY not in backend.capabilities:
        # destroys immediately (transit, PKCS#11): only the destruction pipeline may, after its soak
        with pytest.raises(Unsupported, match="no pending window"):
            backend.schedule_destroy(name, timedelta(days=7))
        return
    backend.generate(KeySpec(name=name, key_type="data", algorithm="AES-256"))
    assert backend.disable(name).status == "inactive"
    assert backend.disable(name).status == "inactive"  # idempotent
    with pytest.raises(InvalidKeyState):
        backend.rotate(name)  # only active keys rotate; checked here even where the provider would not
    assert backend.enable(name).status == "active"
    scheduled = backend.schedule_destroy(name, timedelta(days=7))
    assert scheduled.status == "pending-destruction" and scheduled.destroy_at is not None
    assert backend.schedule_destroy(name, timedelta(days=7)).destroy_at == scheduled.destroy_at
    with pytest.raises(InvalidKeyState):
        backend.enable(name)  # cancel first
    cancelled = backend.cancel_destroy(name)
    assert cancelled.status == "inactive" and cancelled.destroy_at is None


def test_aws_refuses_what_kms_cannot_do_before_calling_it(kms_client, request: pytest.FixtureRequest) -> None:
    kms = AwsKms(kms_client)
    name = _name(request)
    kms.generate(KeySpec(name=name, key_type="signing", algorithm="ECDSA-P256"))
    with pytest.raises(Unsupported, match="only symmetric"):
        kms.rotate(name)
    with pytest.raises(Unsupported, match="90-2560 days"):
        kms.set_rotation_period(name, timedelta(days=30))
    with pytest.raises(Unsupported, match="7-30 whole days"):
        kms.schedule_destroy(name, timedelta(days=3))
    with pytest.raises(Unsupported, match="cannot sign"):
        kms.generate(KeySpec(name=name + "-x", key_type="signing", algorithm="AES-256"))
    assert kms.describe(name).status == "active"


def test_aws_rotation_keeps_old_ciphertext_decryptable(kms_client, request: pytest.FixtureRequest) -> None:
    kms = AwsKms(kms_client)
    name = _name(request)
    info = kms.generate(KeySpec(name=name, key_type="data", algorithm="AES-256"))
    blob = kms_client.encrypt(KeyId=info.ref.uri, Plaintext=b"before rotation")["CiphertextBlob"]
    assert kms.set_rotation_period(name, timedelta(days=90)).status == "active"
    assert kms_client.get_key_rotation_status(KeyId=info.ref.uri)["KeyRotationEnabled"] is True
    kms.rotate(name)
    assert kms_client.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before rotation"


def test_kmo_run_against_aws_kms(kms_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """boto3's own environment reaches the (moto) endpoint; a period KMS cannot keep becomes a recommendation."""
    import json

    from kmo.cli import main

    monkeypatch.setenv("KMO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", kms_client.meta.endpoint_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    request = tmp_path / "req.json"
    request.write_text(
        json.dumps(
            {
                "operation": "generate",
                "keyType": "data",
                "algorithm": "AES-256",
                "keyManagementSystem": "aws-kms",
                "keyId": "billing",
                "rotationPolicy": {"maxAge": "30d", "autoRotate": True},
            }
        )
    )
    assert main(["run", "--request", str(request)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["keyInfo"]["keyId"].startswith("arn:aws:kms:us-east-1:")
    assert any("90-2560 days, not 30" in r for r in out["recommendations"])
    request.write_text(
        json.dumps({"operation": "rotate", "keyId": out["keyInfo"]["keyId"], "keyManagementSystem": "aws-kms"})
    )
    assert main(["run", "--request", str(request)]) == 0
    assert json.loads(capsys.readouterr().out)["rotationStatus"]["newVersion"] == 2


def _approved(pipeline, backend, name: str) -> str:
    pid = pipeline.propose(backend, name, proposer="alice", reason="retired", override_recent_use="test")["id"]
    pipeline.approve(pid, "bob")
    pipeline.approve(pid, "carol")
    return pid


def test_destruction_pipeline_on_transit_soaks_before_the_immediate_delete(openbao_client, tmp_path, request) -> None:
    from datetime import UTC, datetime

    from actions.audit_log import AuditLog
    from actions.certificate import public_signer, verify
    from actions.destruction import DestructionPipeline

    pipeline = DestructionPipeline(tmp_path, AuditLog(tmp_path / "audit.jsonl"), lambda *_: None)
    name = _name(request)
    transit = VaultTransit(openbao_client)
    transit.generate(KeySpec(name=name, key_type="data", algorithm="AES-256"))
    pid = _approved(pipeline, transit, name)
    doc = pipeline.execute(pid, transit, "alice")
    assert doc["status"] == "scheduled" and doc["providerSchedule"] is False
    assert transit.describe(name).status == "active"  # kmo's soak: the key is untouched until it ends
    later = datetime.now(UTC) + timedelta(days=8)
    with pytest.raises(Unsupported):  # a backend not authorised for immediate delete still refuses
        pipeline.complete(pid, transit, "alice", witness="dave", now=later)
    done = pipeline.complete(
        pid, VaultTransit(openbao_client, allow_immediate_destroy=True), "alice", witness="dave", now=later
    )
    assert done["providerProof"] == f"describe {name}: not found"
    assert verify(done["certificate"], public_signer(tmp_path)) == []
    with pytest.raises(KeyNotFound):
        transit.describe(name)


def test_destruction_pipeline_on_aws_schedules_and_will_not_certify_a_key_still_there(
    kms_client, tmp_path, request
) -> None:
    """AWS deletes at the end of its window; moto never does, so completion must refuse to certify."""
    from datetime import UTC, datetime

    from actions.audit_log import AuditLog
    from actions.destruction import DestructionPipeline

    pipeline = DestructionPipeline(tmp_path, AuditLog(tmp_path / "audit.jsonl"), lambda *_: None)
    kms = AwsKms(kms_client)
    name = _name(request)
    info = kms.generate(KeySpec(name=name, key_type="data", algorithm="AES-256"))
    pid = _approved(pipeline, kms, name)
    doc = pipeline.execute(pid, kms, "alice")
    meta = kms_client.describe_key(KeyId=info.ref.uri)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion" and doc["providerSchedule"] is True
    with pytest.raises(InvalidKeyState, match="still pending-destruction"):
        pipeline.complete(pid, kms, "alice", witness="dave", now=datetime.now(UTC) + timedelta(days=8))
    assert pipeline.load(pid)["status"] == "scheduled" and "certificate" not in pipeline.load(pid)
    pipeline.cancel(pid, kms, "bob", "found a consumer")
    assert kms_client.describe_key(KeyId=info.ref.uri)["KeyMetadata"]["KeyState"] == "Disabled"


def test_hsm_keys_are_generated_on_the_token_and_never_readable(softhsm, request: pytest.FixtureRequest) -> None:
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    from actions.backends.pkcs11_hsm import library

    hsm = Pkcs11Hsm(*softhsm)
    for algorithm in ("AES-256", "RSA-2048", "ECDSA-P256", "ECDSA-P384", "Ed25519"):
        name = f"{_name(request)[:20]}-{algorithm}"
        info = hsm.generate(KeySpec(name=name, key_type="signing", algorithm=algorithm))
        assert info.algorithm == algorithm and info.key_size == ALGORITHMS[algorithm][1]
        assert info.labels == {"sensitive": "true", "extractable": "false", "generated_on_token": "true"}
        assert info.ref.uri == f"pkcs11:token=kmo-test;object={name}"
    module, token, pin = softhsm
    with library(module).get_token(token_label=token).open(user_pin=pin) as session:
        secret = session.get_key(label=f"{_name(request)[:20]}-AES-256", object_class=ObjectClass.SECRET_KEY)
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            secret[Attribute.VALUE]
    assert softhsm[2] not in repr(hsm)
    with pytest.raises(PermissionDenied):
        Pkcs11Hsm(module, token, "0000").describe("anything")


def test_destruction_pipeline_on_an_hsm_soaks_then_destroys_every_object(softhsm, tmp_path, request) -> None:
    from datetime import UTC, datetime

    from actions.audit_log import AuditLog
    from actions.certificate import public_signer, verify
    from actions.destruction import DestructionPipeline

    pipeline = DestructionPipeline(tmp_path, AuditLog(tmp_path / "audit.jsonl"), lambda *_: None)
    hsm = Pkcs11Hsm(*softhsm)
    name = _name(request)[-30:]
    hsm.generate(KeySpec(name=name, key_type="signing", algorithm="ECDSA-P256"))
    hsm.rotate(name)
    pid = _approved(pipeline, hsm, name)
    assert pipeline.execute(pid, hsm, "alice")["providerSchedule"] is False
    assert hsm.describe(name).versions == [1, 2]  # soaking: untouched
    done = pipeline.complete(
        pid,
        Pkcs11Hsm(*softhsm, allow_immediate_destroy=True),
        "alice",
        witness="dave",
        now=datetime.now(UTC) + timedelta(days=8),
    )
    assert done["certificate"]["versions"] == [1, 2] and verify(done["certificate"], public_signer(tmp_path)) == []
    with pytest.raises(KeyNotFound):
        hsm.describe(name)  # private and public objects of both versions are gone


def test_kmo_run_against_the_hsm(softhsm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import json

    from kmo.cli import main

    module, token, pin = softhsm
    monkeypatch.setenv("KMO_HOME", str(tmp_path / "home"))
    request = tmp_path / "req.json"
    request.write_text(
        json.dumps(
            {
                "operation": "generate",
                "keyType": "master",
                "algorithm": "AES-256",
                "keyManagementSystem": "hsm",
                "keyId": "run-master",
            }
        )
    )
    assert main(["run", "--request", str(request)]) == 2
    assert "hsm needs KMO_HSM_MODULE, KMO_HSM_TOKEN, KMO_HSM_PIN" in capsys.readouterr().err
    monkeypatch.setenv("KMO_HSM_MODULE", module)
    monkeypatch.setenv("KMO_HSM_TOKEN", token)
    monkeypatch.setenv("KMO_HSM_PIN", pin)
    assert main(["run", "--request", str(request)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["keyInfo"]["keyId"] == "pkcs11:token=kmo-test;object=run-master"
    request.write_text(
        json.dumps({"operation": "rotate", "keyId": out["keyInfo"]["keyId"], "keyManagementSystem": "hsm"})
    )
    assert main(["run", "--request", str(request)]) == 0  # the uri it answered with names the key again
    assert json.loads(capsys.readouterr().out)["rotationStatus"]["newVersion"] == 2
    assert pin not in (tmp_path / "home" / "actions" / "audit.jsonl").read_text()


def test_coordinated_rotation_across_local_and_vault_rolls_back_when_vault_fails(
    openbao_client, tmp_path, request
) -> None:
    """The vault participant's token may read but not rotate: the local key rotated first is rolled back."""
    import hvac

    from actions.audit_log import AuditLog
    from actions.coordinated import CoordinationRefused, Participant, rotate_together

    name = _name(request)[-30:]
    local = LocalKeystore(tmp_path / "ks")
    local.generate(KeySpec(name=name, key_type="data", algorithm="AES-256"))
    VaultTransit(openbao_client).generate(KeySpec(name=name, key_type="data", algorithm="AES-256"))
    openbao_client.sys.create_or_update_policy(
        name="read-keys", policy='path "transit/keys/*" { capabilities = ["read"] }'
    )
    token = openbao_client.auth.token.create(policies=["read-keys"])["auth"]["client_token"]
    read_only = VaultTransit(hvac.Client(url=openbao_client.url, token=token))
    audit = AuditLog(tmp_path / "audit.jsonl")

    # vault is listed first but cannot roll back, so it is moved last; its failure undoes the local rotation
    with pytest.raises(PermissionDenied):
        rotate_together([Participant(read_only, name), Participant(local, name)], audit, "ops")
    assert local.describe(name).version == 1 and read_only.describe(name).version == 1
    outcomes = [(e["operation"], e["outcome"]) for e in audit.entries()]
    assert outcomes == [
        ("coordinated-rotate", "requested"),
        ("coordinated-rotate", "rotated"),
        ("coordinated-rotate", "failed"),
        ("rollback", "succeeded"),
    ]

    summary = rotate_together([Participant(VaultTransit(openbao_client), name), Participant(local, name)], audit, "ops")
    assert summary["rotated"] == [f"local:{name}", f"vault:{name}"]
    assert local.describe(name).version == 3 and read_only.describe(name).version == 2  # local: v2 stays in history
    with pytest.raises(CoordinationRefused, match="more than one participant cannot roll back"):
        rotate_together([Participant(VaultTransit(openbao_client), name), Participant(read_only, name)], audit, "ops")


def test_generation_is_recorded_who_when_where_and_with_what(backend, tmp_path: Path, request) -> None:
    """SP 800-57's generation record, in the audit entry of every backend's generate."""
    from actions.audit_log import AuditLog
    from actions.execute import GENERATION_RECORD, execute

    audit = AuditLog(tmp_path / "audit.jsonl")
    doc = {"operation": "generate", "keyType": "data", "algorithm": "AES-256", "keyId": _name(request)}
    out = execute(doc, backend, audit, actor="alice")
    assert GENERATION_RECORD not in out
    entry = next(e for e in audit.entries() if e["outcome"] == "succeeded")
    made = entry["generation"]
    assert entry["actor"] == "alice" and entry["time"] and made["where"].endswith(out["keyInfo"]["keyId"])
    assert (made["algorithm"], made["keySize"]) == ("AES-256", 256)
    assert made["entropySource"] == backend.generation["entropy_source"] and made["module"]
    assert made["fipsValidated"] in (True, False, None) and made["fipsValidation"]


def test_data_set_labels_where_the_provider_holds_labels(backend, tmp_path: Path, request) -> None:
    """Crypto-shredding finds a data set's keys by their label; providers without labels refuse one."""
    from actions.audit_log import AuditLog
    from actions.execute import execute
    from actions.key_names import name_in_backend
    from actions.shred import keys_of

    doc = {"operation": "generate", "keyType": "data", "algorithm": "AES-256", "keyId": _name(request)}
    audit = AuditLog(tmp_path / "audit.jsonl")
    if not getattr(backend, "holds_labels", False):
        with pytest.raises(Unsupported, match="no labels"):
            execute(doc, backend, audit, actor="ops", data_set="claims-2019")
        return
    out = execute(doc, backend, audit, actor="ops", data_set="claims-2019")
    assert backend.describe(name_in_backend(out["keyInfo"]["keyId"])).labels["kmo-dataset"] == "claims-2019"
    assert out["keyInfo"]["keyId"] in {k.ref.uri for k in keys_of(backend, "claims-2019")}


def test_distribution_to_openbao_is_a_real_byok_import(openbao_client, tmp_path: Path, request) -> None:
    """A local key wrapped for transit's wrapping key lands in OpenBao: transit's own ciphertext
    opens with the local copy, so the same material arrived, and never in plaintext."""
    from actions.audit_log import AuditLog
    from actions.distribution import distribute

    name = "byok-payroll"
    local = LocalKeystore(tmp_path / "ks")
    local.generate(KeySpec(name=name, key_type="data", algorithm="AES-256"))
    transit = VaultTransit(openbao_client)
    out = distribute(local, name, transit, name, AuditLog(tmp_path / "audit.jsonl"), "ops")
    assert out["keyInfo"]["keyId"] == f"vault:transit/keys/{name}" and out["state"] == "active"  # no pre-activation
    sealed = openbao_client.secrets.transit.encrypt_data(name, plaintext="cGF5cm9sbA==")["data"]["ciphertext"]
    assert sealed.startswith("vault:v1:")
    assert local.decrypt(name, b"kmo:v1:" + sealed.removeprefix("vault:v1:").encode()) == b"payroll"
    with pytest.raises(InvalidKeyState, match="exists"):
        distribute(local, name, transit, name, AuditLog(tmp_path / "audit.jsonl"), "ops")
    signer = "byok-signer"
    local.generate(KeySpec(name=signer, key_type="signing", algorithm="Ed25519"))
    assert (
        distribute(local, signer, transit, signer, AuditLog(tmp_path / "audit.jsonl"), "ops")["keyInfo"]["algorithm"]
        == "Ed25519"
    )


def test_transit_old_versions_retire_reversibly(openbao_client) -> None:
    """min_decryption_version deactivates old versions; lowering it brings them back (no trim here)."""
    import hvac.exceptions

    transit = VaultTransit(openbao_client)
    transit.generate(KeySpec(name="retiring", key_type="data", algorithm="AES-256"))
    old = openbao_client.secrets.transit.encrypt_data("retiring", plaintext="b2xk")["data"]["ciphertext"]
    transit.rotate("retiring")
    retired = transit.retire_versions("retiring", 2)
    assert retired.labels["min_decryption_version"] == "2" and retired.versions == [2]  # transit lists live ones
    with pytest.raises(hvac.exceptions.InvalidRequest):
        openbao_client.secrets.transit.decrypt_data("retiring", ciphertext=old)
    transit.retire_versions("retiring", 1)
    assert openbao_client.secrets.transit.decrypt_data("retiring", ciphertext=old)["data"]["plaintext"] == "b2xk"
    with pytest.raises(InvalidKeyState):
        transit.retire_versions("retiring", 3)


def test_pre_activation_is_held_only_where_the_backend_has_the_state(backend, request) -> None:
    """The local keystore holds a generated key pre-activation until activate(); the providers make
    keys usable at once, so they refuse the request rather than ignore it."""
    spec = KeySpec(name=_name(request), key_type="data", algorithm="AES-256", pre_activation=True)
    if isinstance(backend, LocalKeystore):
        assert backend.generate(spec).state.value == "pre-activation"
        assert backend.activate(spec.name).status == "active"
        return
    with pytest.raises(Unsupported, match="no pre-activation state"):
        backend.generate(spec)
    with pytest.raises(KeyNotFound):
        backend.describe(spec.name)


def test_transit_lists_only_keys_after_a_byok_import(openbao_client, tmp_path: Path) -> None:
    from actions.audit_log import AuditLog
    from actions.distribution import distribute

    local = LocalKeystore(tmp_path / "ks")
    local.generate(KeySpec(name="byok-listed", key_type="data", algorithm="AES-256"))
    transit = VaultTransit(openbao_client)
    distribute(local, "byok-listed", transit, "byok-listed", AuditLog(tmp_path / "audit.jsonl"), "ops")
    assert "import/" in openbao_client.secrets.transit.list_keys()["data"]["keys"]  # what OpenBao answers
    names = {k.ref.uri for k in transit.list_keys()}
    assert "vault:transit/keys/byok-listed" in names and not any(n.endswith("/") for n in names)
