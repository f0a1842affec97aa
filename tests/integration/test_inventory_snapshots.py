"""``kmo inventory --all --publish``: every configured system listed, one snapshot to Kafka, and the
sink keeps snapshot history in DuckDB (what the estate looked like on any day)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analytics.query import run_query
from analytics.sink import run_sink
from kmo.cli import main
from kmo.kafka import ensure_all_topics, make_producer, resolve_bootstrap
from kmo.settings import Settings
from tests.conftest import kmo_env
from tests.fakes import gcp_kms_server
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.integration
RING = "projects/kmo-test/locations/global/keyRings/inventory"


def test_inventory_of_every_configured_system_reaches_the_warehouse(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    keystore = str(tmp_path / "ks")
    for var, value in kmo_env(settings).items():
        if var.startswith("KMO_"):
            monkeypatch.setenv(var, value)
    for var in ("VAULT_ADDR", "KMO_HSM_MODULE", "KMO_AZURE_VAULT_URL", "AWS_ENDPOINT_URL_KMS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))  # no region: aws-kms is not configured
    for var in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    with gcp_kms_server.serve() as (_state, endpoint):
        monkeypatch.setenv("KMO_GCP_KEY_RING", RING)
        monkeypatch.setenv("KMO_GCP_KMS_ENDPOINT", endpoint)
        gen = ["generate", "--key-type", "data", "--algorithm", "AES-256"]
        assert main([*gen, "--keystore", keystore, "--key-id", "orders"]) == 0
        assert main([*gen, "--system", "gcp-kms", "--key-id", "ledger"]) == 0
        assert main(["rotate", "--system", "gcp-kms", "--key-id", "ledger"]) == 0
        capsys.readouterr()
        assert main(["inventory", "--all", "--publish", "--keystore", keystore]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["published"] == 2 and first["auditReport"]["keysInventoried"] == 2
    assert first["systems"]["gcp-kms"] == {"keys": 1} and first["systems"]["local"] == {"keys": 1}
    assert first["systems"]["vault"] == {"skipped": "not configured in this environment"}
    assert {(k["system"], k["keyId"]) for k in first["keys"]} == {
        ("local", "local:orders"),
        ("gcp-kms", f"{RING}/cryptoKeys/ledger"),
    }

    assert main(["rotate", "--keystore", keystore, "--key-id", "orders"]) == 0
    assert main(["inventory", "--publish", "--keystore", keystore]) == 0  # a second, later snapshot
    topics = ensure_all_topics(settings)
    producer = make_producer(resolve_bootstrap(settings))
    producer.send(topics.inventory.name, key=b"x", value=b'{"uid": "u", "snapshotId": "s"}')  # not a snapshot
    producer.flush()
    producer.close()
    run_sink(settings, until_idle=3)

    history = run_query(
        settings, "SELECT system, key_id, version, state FROM inventory_snapshots ORDER BY taken_at, system"
    ).to_pylist()
    assert [(r["key_id"], r["version"]) for r in history if r["system"] == "local"] == [
        ("local:orders", 1),
        ("local:orders", 2),
    ]
    latest = run_query(settings, "SELECT system, key_id, version FROM inventory_latest ORDER BY system").to_pylist()
    assert [(r["system"], r["version"]) for r in latest] == [("gcp-kms", 2), ("local", 2)]
    letters = read_all(resolve_bootstrap(settings), topics.dlq.name)
    assert [letter.value for letter in letters] == [b'{"uid": "u", "snapshotId": "s"}']
