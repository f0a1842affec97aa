"""One contract, every backend built so far: the local keystore and Vault/OpenBao transit (a real dev
server). A backend that passes behaves the same to the orchestrator wherever the key lives."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from actions.backends.base import Capability, InvalidKeyState, KeyNotFound, KeySpec, Unsupported
from actions.backends.local import LocalKeystore
from actions.backends.vault_transit import VaultTransit
from actions.request import schema
from tests.integration.test_vault_live import run_openbao

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def openbao_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    with run_openbao(tmp_path_factory.mktemp("bao")) as (client, _audit, _addr, _proc):
        client.sys.enable_secrets_engine("transit")
        yield client


@pytest.fixture(params=["local", "vault"])
def backend(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "local":
        return LocalKeystore(tmp_path / "ks")
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
    assert name in {re.split("[:/]", k.ref.uri)[-1] for k in backend.list_keys()}
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
    backend.generate(KeySpec(name=name, key_type="signing", algorithm="ECDSA-P256"))
    rotated = backend.rotate(name)
    assert rotated.version == 2 and rotated.versions == [1, 2]
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
