"""Plant known secrets (a Vault token, an HSM PIN, an Azure token, AWS credentials, a plaintext sent
through transit) and key material, drive kmo through its commands, then scan everything it wrote:
every file under KMO_HOME (the warehouse included), every Kafka topic, and what it printed."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from actions.backends.local import LocalKeystore
from analytics.sink import run_sink
from kmo.cli import main
from kmo.kafka import ensure_all_topics, resolve_bootstrap
from kmo.settings import Settings
from tests.conftest import kmo_env
from tests.fakes import azure_keyvault_server
from tests.integration.test_backend_contract import openbao_client  # noqa: F401 (a fixture)
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.integration
VAULT_TOKEN = "kmo-planted-vault-token-5c1e9a"
AWS_SECRET = "kmo-planted-aws-secret-77f0b2"
PLAINTEXT = "kmo-planted-plaintext-3b8d41"


def _forms(secret: bytes) -> list[bytes]:
    """A secret as it might leak: raw, hex, base64 (standard and url-safe)."""
    return [secret, secret.hex().encode(), base64.b64encode(secret), base64.urlsafe_b64encode(secret).rstrip(b"=")]


def test_nothing_kmo_writes_holds_a_secret_or_key_material(
    settings: Settings,
    openbao_client,  # noqa: F811 (the imported fixture)
    softhsm,
    tmp_path: Path,
    monkeypatch,
    capsys,
) -> None:
    module, token_label, pin = softhsm
    openbao_client.auth.token.create(id=VAULT_TOKEN, policies=["root"])
    for var, value in kmo_env(settings).items():
        if var.startswith("KMO_"):
            monkeypatch.setenv(var, value)
    env = {
        "VAULT_ADDR": openbao_client.url, "VAULT_TOKEN": VAULT_TOKEN,
        "KMO_HSM_MODULE": module, "KMO_HSM_TOKEN": token_label, "KMO_HSM_PIN": pin,
        "AWS_ACCESS_KEY_ID": "AKIAKMOPLANTED0001", "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
    }  # fmt: skip
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    keystore = tmp_path / "ks"
    gen = ["generate", "--key-type", "data", "--algorithm", "AES-256"]
    with azure_keyvault_server.serve(managed_hsm=True) as (_vault, url, ca):
        monkeypatch.setenv("KMO_AZURE_VAULT_URL", url)
        monkeypatch.setenv("KMO_AZURE_ACCESS_TOKEN", azure_keyvault_server.TOKEN)
        monkeypatch.setenv("KMO_AZURE_CA_BUNDLE", ca)
        monkeypatch.setenv("KMO_AZURE_VERIFY_CHALLENGE_RESOURCE", "0")
        monkeypatch.setenv("KMO_AZURE_MANAGED_HSM", "1")
        steps = [
            [*gen, "--system", "vault", "--key-id", "scan-orders"],
            ["rotate", "--system", "vault", "--key-id", "scan-orders"],
            [*gen, "--system", "hsm", "--key-id", "scan-hsm"],
            [*gen, "--system", "azure-keyvault", "--key-id", "scan-azure"],
            [*gen, "--keystore", str(keystore), "--key-id", "scan-local"],
            ["derive", "--keystore", str(keystore), "--from", "scan-local", "--key-id", "scan-tenant", "--context", "t1"],
            ["distribute", "--keystore", str(keystore), "--key", "scan-local", "--to", "vault", "--target-name", "scan-byok"],
            ["inventory", "--all", "--publish", "--keystore", str(keystore)],
            ["destroy", "propose", "--key", "scan-local", "--system", "local", "--keystore", str(keystore),
             "--reason", "scan", "--override-recent-use", "test"],
            ["ship-audit"],
        ]  # fmt: skip
        for args in steps:
            assert main(args) == 0, args
        monkeypatch.setenv("KMO_HSM_PIN", "0000")  # a failing command's error must not echo a PIN either
        assert main(["inventory", "--system", "hsm"]) == 1
        monkeypatch.setenv("KMO_HSM_PIN", pin)
    openbao_client.secrets.transit.encrypt_data(
        "scan-orders", plaintext=base64.b64encode(PLAINTEXT.encode()).decode()
    )  # through Vault's own audit device, which kmo ingests below
    audit_log = Path(openbao_client.sys.list_enabled_audit_devices()["data"]["to-file/"]["options"]["file_path"])
    assert main(["ingest", "vault", str(audit_log)]) == 0
    run_sink(settings, until_idle=3)
    assert main(["report", "--period", "last/1d", "--framework", "PCI-DSS"]) == 0
    assert main(["cbom", "--out", str(settings.home / "cbom.json")]) == 0
    printed = capsys.readouterr()

    local = LocalKeystore(keystore)
    material = []
    for name in ("scan-local", "scan-tenant"):
        doc = json.loads((keystore / f"{name}.json").read_text())
        material += [local._unseal(name, v["version"], v) for v in doc["versions"]]
    secrets = {
        "vault token": _forms(VAULT_TOKEN.encode()),
        "hsm pin": _forms(pin.encode()),
        "azure token": _forms(azure_keyvault_server.TOKEN.encode()),
        "aws secret": _forms(AWS_SECRET.encode()),
        "transit plaintext": _forms(PLAINTEXT.encode()),
        **{f"key material {i}": _forms(m) for i, m in enumerate(material)},
    }
    written: dict[str, bytes] = {
        str(p): p.read_bytes() for p in settings.home.rglob("*") if p.is_file() and not p.name.endswith(".sock")
    }
    bootstrap = resolve_bootstrap(settings)
    for topic in ensure_all_topics(settings).all():
        for rec in read_all(bootstrap, topic.name):
            headers = b"".join(v for _k, v in (rec.headers or []))
            written[f"kafka:{topic.name}@{rec.partition}/{rec.offset}"] = (
                (rec.key or b"") + (rec.value or b"") + headers
            )
    written["stdout"], written["stderr"] = printed.out.encode(), printed.err.encode()
    assert (
        len(written) > 50 and any("kmo.events" in k for k in written) and any("warehouse.duckdb" in k for k in written)
    )
    leaks = [
        (what, where)
        for what, forms in secrets.items()
        for where, data in written.items()
        if any(f in data for f in forms)
    ]
    assert leaks == []
