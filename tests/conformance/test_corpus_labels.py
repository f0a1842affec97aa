"""Conformance: every labelled record in ../shared/corpus against kmo's rules.

Panther's own test events (``panther_tests.labels.csv``) and StreamAlert's
(``aws_cloudtrail_kms_streamalert_tests.labels.csv``) say, record by record, whether their rule
should alert. Each record is parsed by kmo's parser and replayed alone through every kmo rule; the
kmo rules that do that rule's job (``COUNTERPARTS``) must fire exactly on the positives. Where kmo
decides differently on purpose the row is listed in ``KMO_DIFFERS`` with the reason, and the test
checks that kmo still does what the reason says. Panther rules with a threshold (alert after N
matching events) get their record N times, a second apart, as Panther would count them.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import timedelta
from functools import cache
from pathlib import Path

import pytest

from ingest.schema import KeyEvent
from streams.inventory import Inventory
from streams.policy import load_policy
from streams.replay import replay
from tests.parse_helpers import parse_file

SOURCES = {
    "aws_cloudtrail_kms_panther_tests.jsonl": "aws.cloudtrail",
    "gcp_auditlog_cloudkms_panther_tests.jsonl": "gcp.audit",
    "azure_activity_keyvault_panther_tests.jsonl": "azure.keyvault",
    "aws_cloudtrail_kms_streamalert_tests.json": "aws.cloudtrail",
}

# upstream rule -> the kmo rules that do its job
COUNTERPARTS = {
    "AWS.KMS.CustomerManagedKeyLoss": {"any.key_disabled", "any.key_destruction_scheduled"},
    "AWS.S3.CopyObject.CrossAccount.Encryption.KMS": {"any.cross_account_use"},
    "AWS.CloudTrail.ResourceMadePublic": {"aws_kms.key_policy_public"},
    "GCP.KMS.BulkEncryption": {"gcp_kms.storage_agent_bulk_encrypt"},
    "GCP.KMS.CrossProjectEncryption": {"any.cross_account_use"},
    "GCP.KMS.EnableKey": {"gcp_kms.key_granted_to_storage_agent"},
    "GCP.KMS.EraseKey": {"any.key_disabled", "any.key_destruction_scheduled"},
    "Azure.MonitorActivity.KeyVault.CertificateAccessed": {"azure_kv.object_read_first_time"},
    "Azure.MonitorActivity.KeyVault.Deleted": {"azure_kv.sensitive_operation"},
    "Azure.MonitorActivity.KeyVault.KeyAccessed.Recovered": {"azure_kv.object_read_first_time"},
    "Azure.MonitorActivity.KeyVault.KeyPurged": {"azure_kv.sensitive_operation"},
    "Azure.MonitorActivity.KeyVault.Purged": {"azure_kv.sensitive_operation"},
    "Azure.MonitorActivity.KeyVault.SecretAccessedOrRecovered": {"azure_kv.object_read_first_time"},
    "cloudtrail_public_resources": {"aws_kms.key_policy_public"},
}

# upstream rules that alert only after this many matching events (Panther's Threshold)
THRESHOLDS = {"GCP.KMS.BulkEncryption": 10}

# (file, 1-based line) -> why kmo fires where the upstream rule does not
KMO_DIFFERS = {
    ("azure_activity_keyvault_panther_tests.jsonl", 14): "a key's soft delete (vaults/keys/delete) is a "
    "sensitive operation in Sentinel's set, which kmo follows; Panther's purge rule ignores it",
    ("azure_activity_keyvault_panther_tests.jsonl", 17): "a vault's deletion is a sensitive operation in "
    "Sentinel's set (and Panther's own Deleted rule); Panther's purge rule ignores it",
}


def _labels(corpus: Path) -> list[tuple[str, int, str, bool]]:
    rows: list[tuple[str, int, str, bool]] = []
    with open(corpus / "panther_tests.labels.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            rows.append((r["file"], int(r["line"]), r["rule_id"], r["expected_result"] == "True"))
    with open(corpus / "aws_cloudtrail_kms_streamalert_tests.labels.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            name = "aws_cloudtrail_kms_streamalert_tests.json"
            rows.append((name, int(r["record_index"]) + 1, r["expected_trigger_rules"], True))
    return rows


@cache
def _file_events(path: Path, source: str) -> tuple[KeyEvent, ...]:
    """A corpus file's events, parsed once for all its labelled rows."""
    return tuple(parse_file(source, path).events)


def _record_events(corpus: Path, name: str, line: int) -> list[KeyEvent]:
    return [e for e in _file_events(corpus / name, SOURCES[name]) if e.origin.endswith(f"#{line - 1}")]


def test_every_labelled_record_is_listed(corpus: Path) -> None:
    rows = _labels(corpus)
    assert len(rows) == 42  # 40 Panther + 2 StreamAlert
    assert {rule for _, _, rule, _ in rows} == set(COUNTERPARTS)


@pytest.mark.parametrize("row", range(42))
def test_labelled_record(corpus: Path, row: int) -> None:
    name, line, upstream, positive = _labels(corpus)[row]
    events = _record_events(corpus, name, line)
    assert len(events) == 1, f"{name}:{line} must parse to one event"
    (event,) = events
    repeat = THRESHOLDS.get(upstream, 1)
    stream = [replace(event, uid=f"{event.uid}-{i}", time=event.time + timedelta(seconds=i)) for i in range(repeat)]
    result = replay(stream, policy=load_policy(), inventory=Inventory())
    fired = {f.rule_id for f in result.findings} & COUNTERPARTS[upstream]
    differs = KMO_DIFFERS.get((name, line))
    if differs:
        assert not positive and fired, f"{name}:{line}: kmo should fire here ({differs})"
        return
    assert bool(fired) is positive, (
        f"{name}:{line} ({upstream}): expected {'a' if positive else 'no'} finding from "
        f"{sorted(COUNTERPARTS[upstream])}, got {sorted(f.rule_id for f in result.findings)}"
    )
