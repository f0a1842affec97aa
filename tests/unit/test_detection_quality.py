"""Detection quality, measured: seeded incidents caught, false positives on benign traffic, the
labelled Stratus attack in the corpus found, the benign corpus samples raising no anomalies."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from ingest.offline import read_events
from kmo.demo.cloudtrail_files import render_files, write_files
from kmo.demo.estate import Estate
from kmo.demo.other_sources import generate_all
from kmo.demo.run import detect_demo
from streams.findings import Category
from streams.inventory import Inventory
from streams.policy import load_policy
from streams.replay import replay


def test_demo_estate_every_incident_caught_and_few_false_positives(tmp_path: Path) -> None:
    estate = Estate(seed=11, days=10)
    records = estate.generate()
    write_files(tmp_path / "cloudtrail", render_files(records))
    others = generate_all(estate)
    for other in others:
        write_files(tmp_path / other.directory, other.files)
    (tmp_path / "inventory.json").write_text(json.dumps(estate.inventory()))
    (tmp_path / "incidents.json").write_text(json.dumps([i.as_dict() for i in estate.incidents]))
    result, scored = detect_demo(tmp_path, others)
    assert result.errors == []
    assert scored.missed == [], f"missed incidents: {scored.missed}"
    assert scored.fp_per_100k < 2.0, [f.message for f in scored.false_positives[:5]]


def test_stratus_attack_in_the_corpus_is_found(corpus: Path) -> None:
    events = list(read_events("aws.cloudtrail", [str(corpus / "aws_cloudtrail_kms_invictus_stratus_attack.json")]))
    result = replay(events, policy=load_policy(), inventory=Inventory())
    harvest = [f for f in result.findings if f.rule_id == "any.secret_mass_read"]
    assert harvest and {f.actor for f in harvest} == {"arn:aws:iam::123837392027:user/bert-jan"}
    assert max(f.details["secrets"] for f in harvest) >= 20


def test_benign_corpus_samples_raise_no_anomalies(corpus: Path) -> None:
    name = "aws_cloudtrail_kms_awsdocs_examples.json"
    result = replay(read_events("aws.cloudtrail", [str(corpus / name)]), policy=load_policy(), inventory=Inventory())
    anomalies = [f for f in result.findings if f.category is Category.ANOMALOUS_USAGE]
    assert anomalies == [], (name, [f.message for f in anomalies])
    # Panther's test file mixes positives and negatives: anomalies only on the labelled positives
    # (the cross-account CopyObject); tests/conformance/test_corpus_labels.py checks every row
    name = "aws_cloudtrail_kms_panther_tests.jsonl"
    events = list(read_events("aws.cloudtrail", [str(corpus / name)]))
    with open(corpus / "panther_tests.labels.csv", newline="") as fh:
        positive = {
            int(r["line"]) - 1 for r in csv.DictReader(fh) if r["file"] == name and r["expected_result"] == "True"
        }
    benign = {e.uid for e in events if int(e.origin.rsplit("#", 1)[1]) not in positive}
    result = replay(events, policy=load_policy(), inventory=Inventory())
    anomalies = [f for f in result.findings if f.category is Category.ANOMALOUS_USAGE]
    assert [f.rule_id for f in anomalies] == ["any.cross_account_use"]
    assert not any(set(f.evidence) & benign for f in anomalies)
    for source, name in (
        ("vault.audit", "vault_audit_tfc_jwt_tallen.json"),
        ("azure.keyvault", "azure_keyvault_auditevent_msdocs_example.json"),
    ):
        result = replay(read_events(source, [str(corpus / name)]), policy=load_policy(), inventory=Inventory())
        assert [f for f in result.findings if f.category is Category.ANOMALOUS_USAGE] == []


def test_kmo_detect_cli_prints_findings_as_json_lines(corpus: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "kmo.cli", "detect", str(corpus / "aws_cloudtrail_kms_streamalert_tests.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    findings = [json.loads(line) for line in run.stdout.splitlines()]
    by_rule = {f["finding_info"]["analytic"]["uid"]: f for f in findings}
    assert sorted(by_rule) == ["aws_kms.key_policy_changed", "aws_kms.key_policy_public"]
    public = by_rule["aws_kms.key_policy_public"]
    assert public["finding_info"]["types"] == ["policy-violation"] and public["count"] == 2
    assert "2 findings" in run.stderr
