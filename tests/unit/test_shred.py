"""Crypto-shredding: a data set's keys destroyed through the ordinary pipeline, tracked together."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from actions import shred
from actions.audit_log import AuditLog
from actions.backends.base import KeySpec
from actions.backends.local import LocalKeystore
from actions.destruction import DestructionPipeline, DestructionRefused


def test_a_data_set_is_shredded_when_every_key_has_its_certificate(tmp_path: Path) -> None:
    ks = LocalKeystore(tmp_path / "ks")
    for name, data_set in (("eu-1", "customers-eu"), ("eu-2", "customers-eu"), ("us-1", "customers-us")):
        ks.generate(KeySpec(name=name, key_type="data", algorithm="AES-256", labels={"kmo-dataset": data_set}))
    audit = AuditLog(tmp_path / "audit.jsonl")
    pipeline = DestructionPipeline(tmp_path, audit, lambda *_: (0, None))
    with pytest.raises(DestructionRefused, match="no live key"):
        shred.propose(pipeline, ks, "customers-apac", proposer="dpo", reason="erasure request")
    with pytest.raises(DestructionRefused, match="lowercase"):
        shred.propose(pipeline, ks, "Customers EU", proposer="dpo", reason="erasure request")
    doc = shred.propose(pipeline, ks, "customers-eu", proposer="dpo", reason="GDPR art. 17 request 881")
    assert sorted(k["keyId"] for k in doc["keys"]) == ["local:eu-1", "local:eu-2"]
    assert shred.status(pipeline, doc["id"])["status"] == "in progress"
    for key in doc["keys"]:
        pipeline.approve(key["proposal"], "custodian-a")
        pipeline.approve(key["proposal"], "custodian-b")
        pipeline.execute(key["proposal"], ks, "dpo")
        pipeline.complete(key["proposal"], ks, "dpo", witness="w", now=datetime.now(UTC) + timedelta(days=8))
    done = shred.status(pipeline, doc["id"])
    assert done["status"] == "shredded" and all(k["certificate"] for k in done["keys"])
    assert ks.describe("us-1").status == "active"  # another data set is untouched
    assert [e["operation"] for e in audit.entries()].count("crypto-shred") == 1


def test_a_refusal_for_one_key_cancels_the_others(tmp_path: Path) -> None:
    ks = LocalKeystore(tmp_path / "ks")
    for name in ("a", "b"):
        ks.generate(KeySpec(name=name, key_type="data", algorithm="AES-256", labels={"kmo-dataset": "logs"}))
    uses = {"local:a": (0, None), "local:b": (5, datetime.now(UTC))}  # b is still in use
    pipeline = DestructionPipeline(tmp_path, AuditLog(tmp_path / "audit.jsonl"), lambda uri, _since: uses[uri])
    with pytest.raises(DestructionRefused, match="local:b was used 5 times"):
        shred.propose(pipeline, ks, "logs", proposer="dpo", reason="retention ended")
    assert {p["status"] for p in pipeline.proposals()} == {"cancelled"}  # never half-proposed


def test_kmo_generate_data_set_and_kmo_shred(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from kmo.cli import main

    monkeypatch.setenv("KMO_HOME", str(tmp_path / "home"))
    ks = str(tmp_path / "ks")
    gen = ["generate", "--keystore", ks, "--key-type", "data", "--algorithm", "AES-256"]
    assert main([*gen, "--key-id", "k1", "--data-set", "claims-2019"]) == 0
    assert main([*gen, "--key-id", "k2", "--data-set", "Claims 2019"]) == 2  # not a valid data set name
    capsys.readouterr()
    args = ["shred", "propose", "--data-set", "claims-2019", "--keystore", ks, "--reason", "retention ended"]
    assert main(args) == 1  # no warehouse to confirm the key is unused
    assert "no audit warehouse" in capsys.readouterr().err
    assert main([*args, "--override-recent-use", "archive verified empty"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [k["keyId"] for k in doc["keys"]] == ["local:k1"]
    assert main(["shred", "status", doc["id"]]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "in progress"
