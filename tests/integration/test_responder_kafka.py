"""kmo responder against the real broker: a finding on the findings topic rotates the key once, and the
offset is committed only after the action is in the audit log."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from actions.backends.base import KeySpec
from actions.backends.local import LocalKeystore
from kmo.cli import main
from kmo.kafka import ensure_all_topics, make_producer, resolve_bootstrap
from kmo.settings import Settings
from tests.conftest import kmo_env
from tests.kafka_helpers import headers, read_all
from tests.unit.test_responder import finding

pytestmark = pytest.mark.integration


def test_respond_rotates_once_across_restarts(settings: Settings, tmp_path: Path, monkeypatch, capsys) -> None:
    topics = ensure_all_topics(settings)
    store = LocalKeystore(tmp_path / "ks")
    store.generate(KeySpec(name="orders", key_type="data", algorithm="AES-256"))
    policy = tmp_path / "policy.yaml"
    policy.write_text("auto_response: {any.rotation_overdue: rotate}\nresponse_mode: enforce\n")
    producer = make_producer(resolve_bootstrap(settings))
    doc = finding("any.rotation_overdue", ["local:orders"], uid="f-kafka")
    producer.send(topics.findings.name, key=b"f-kafka", value=orjson.dumps(doc))
    producer.send(topics.findings.name, key=b"f-kafka", value=orjson.dumps(doc))  # the worker re-published it
    producer.send(topics.findings.name, key=b"junk", value=b"{not json")
    producer.flush()
    producer.close()
    for name, value in kmo_env(settings).items():
        if name.startswith("KMO_"):
            monkeypatch.setenv(name, value)
    argv = ["responder", "--policy", str(policy), "--keystore", str(tmp_path / "ks"), "--until-idle", "4"]
    assert main(argv) == 0
    assert "3 findings read" in capsys.readouterr().err  # the junk one is logged and passed over
    assert store.describe("orders").version == 2
    assert main(argv) == 0  # a restart: the group's offsets were committed, nothing is re-read
    assert "0 findings read" in capsys.readouterr().err
    assert store.describe("orders").version == 2
    audit = [line for line in (settings.home / "actions" / "audit.jsonl").read_text().splitlines() if line]
    assert sum('"succeeded"' in line for line in audit) == 1
    letters = read_all(resolve_bootstrap(settings), topics.dlq.name)
    assert [(r.value, headers(r)["kmo-stage"]) for r in letters] == [(b"{not json", "respond")]
