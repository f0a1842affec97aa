"""Conformance: every CloudTrail file in ../shared/corpus parses with exact, known counts.

Counts come from the corpus's own SOURCES.md and its sidecar index/label files; this test reads
the files in place (they are not all licensed for copying into this repository).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from ingest.schema import KeyOp
from tests.parse_helpers import parse_file


def run(path: Path):
    parsed = parse_file("aws.cloudtrail", path)
    return parsed.events, parsed.skipped, parsed.dead


# file -> (records, events, skipped records of other services, dead letters). Events are KMS's own
# records plus the other services' calls that choose a KMS key (S3 CopyObject under SSE-KMS).
EXPECTED = {
    "aws_cloudtrail_kms_invictus_stratus_attack.json": (617, 240, 377, 0),
    "aws_cloudtrail_kms_awsdocs_examples.json": (62, 60, 2, 0),
    "aws_cloudtrail_kms_streamalert_tests.json": (2, 2, 0, 0),
    "aws_cloudtrail_kms_panther_tests.jsonl": (9, 9, 0, 0),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_exact_counts(corpus: Path, name: str) -> None:
    events, skipped, dead = run(corpus / name)
    records, n_events, n_skipped, n_dead = EXPECTED[name]
    assert (len(events) + len(skipped) + len(dead), len(events), len(skipped), len(dead)) == (
        records,
        n_events,
        n_skipped,
        n_dead,
    )
    assert len({e.uid for e in events}) == len(events), "distinct records must have distinct uids"
    for e in events:
        assert e.raw and e.raw in (corpus / name).read_text()  # verbatim


def test_every_cloudtrail_file_in_the_corpus_is_covered(corpus: Path) -> None:
    assert {p.name for p in corpus.glob("aws_cloudtrail_*.json*")} == set(EXPECTED)


def test_invictus_attack_operations_and_actor(corpus: Path) -> None:
    events, _, _ = run(corpus / "aws_cloudtrail_kms_invictus_stratus_attack.json")
    assert Counter(e.operation for e in events) == {"Decrypt": 178, "Encrypt": 42, "GenerateDataKey": 20}
    assert {e.actor.principal_type for e in events} == {"IAMUser"}
    assert {e.actor.principal.rsplit("/", 1)[-1] for e in events} == {"bert-jan"}
    assert {e.account for e in events} == {"123837392027"}
    assert Counter(e.actor.invoked_by for e in events if e.operation == "Decrypt") == {
        "AWS Internal": 122,
        "secretsmanager.amazonaws.com": 56,
    }
    assert all(e.key is not None and not e.key.is_alias for e in events)
    # SOURCES.md gives 11:57:47-12:08:10; those bound the whole file. The KMS records themselves
    # span 11:57:49-12:08:04 (checked against the raw eventTime values).
    assert min(e.time for e in events).isoformat() == "2023-07-10T11:57:49+00:00"
    assert max(e.time for e in events).isoformat() == "2023-07-10T12:08:04+00:00"


def test_awsdocs_examples_match_their_index_and_map_every_operation(corpus: Path) -> None:
    path = corpus / "aws_cloudtrail_kms_awsdocs_examples.json"
    events, _, _ = run(path)
    with open(corpus / "aws_cloudtrail_kms_awsdocs_examples.index.csv", newline="") as fh:
        index = [row for row in csv.DictReader(fh) if row["eventSource"] == "kms.amazonaws.com"]
    assert [e.operation for e in events] == [row["eventName"] for row in index]
    assert [e.op for e in events if e.op is KeyOp.OTHER] == [], "every documented KMS API has a mapping"
    errors = {(e.operation, e.error_code) for e in events if not e.success}
    assert errors == {
        ("Decrypt", "KMSInvalidStateException"),
        ("GenerateDataKeyWithoutPlaintext", "InvalidKeyUsageException"),
    }
    service = [e.operation for e in events if e.actor.principal_type == "AWSService"]
    assert sorted(set(service)) == [
        "DeleteExpiredKeyMaterial",
        "DeleteKey",
        "RotateKey",
        "SynchronizeMultiRegionKey",
    ]
    keyless = sorted({e.operation for e in events if e.key is None})
    assert keyless == [
        "ConnectCustomKeyStore",
        "CreateCustomKeyStore",
        "DeleteCustomKeyStore",
        "DescribeCustomKeyStores",
        "DisconnectCustomKeyStore",
        "GenerateRandom",
        "ListAliases",
        "UpdateCustomKeyStore",
    ]


def test_streamalert_public_policy_records(corpus: Path) -> None:
    events, _, _ = run(corpus / "aws_cloudtrail_kms_streamalert_tests.json")
    assert [e.operation for e in events] == ["PutKeyPolicy", "CreateKey"]
    policy = json.loads(events[0].details["policy"])
    assert any(st.get("Principal") == {"AWS": "*"} for st in policy["Statement"])


def test_panther_records_line_up_with_their_labels(corpus: Path) -> None:
    events, skipped, _ = run(corpus / "aws_cloudtrail_kms_panther_tests.jsonl")
    with open(corpus / "panther_tests.labels.csv", newline="") as fh:
        labels = [r for r in csv.DictReader(fh) if r["file"] == "aws_cloudtrail_kms_panther_tests.jsonl"]
    assert len(labels) == 9 and skipped == []
    assert [e.operation for e in events] == [
        "DisableKey",
        "ScheduleKeyDeletion",
        "Decrypt",
        "ScheduleKeyDeletion",
        "DisableKey",
        "CopyObject",
        "CopyObject",
        "PutKeyPolicy",
        "PutKeyPolicy",
    ]
    assert [e.success for e in events].count(False) == 1  # the NotFoundException DisableKey
    # Five records share eventID "1": they must still be five events.
    assert len({e.uid for e in events}) == 9
    # the S3 copies under SSE-KMS: the key that now protects the object, and the object itself
    copies = [e for e in events if e.operation == "CopyObject"]
    assert [(e.op, e.service, e.key.uri if e.key else None) for e in copies] == [
        (KeyOp.ENCRYPT, "s3.amazonaws.com", "arn:aws:kms:us-east-1:999999999999:key/attacker-key-id"),
        (KeyOp.ENCRYPT, "s3.amazonaws.com", "arn:aws:kms:us-east-1:111111111111:key/attacker-key-id"),
    ]
    assert {e.details["s3_object"] for e in copies} == {"victim-data-bucket/important-file.txt"}


# Other sources' corpus files fed to the CloudTrail parser: nothing crashes, nothing becomes an
# event, every record is dead-lettered (their own parsers arrive with issue 3).
OTHER_SOURCES = {
    "aws_cloudhsm_audit_awsdocs_examples.log": 1,  # not JSON: one frame holding the whole text
    "azure_activity_keyvault_panther_tests.jsonl": 21,
    "azure_keyvault_auditevent_msdocs_example.json": 1,
    "gcp_auditlog_cloudkms_panther_tests.jsonl": 10,
    "vault_audit_elastic_integrations_test.log": 13,
    "vault_audit_tfc_jwt_tallen.json": 12,
}


@pytest.mark.parametrize("name", sorted(OTHER_SOURCES))
def test_other_log_types_are_dead_lettered_not_misread(corpus: Path, name: str) -> None:
    events, skipped, dead = run(corpus / name)
    assert (len(events), len(skipped), len(dead)) == (0, 0, OTHER_SOURCES[name])
