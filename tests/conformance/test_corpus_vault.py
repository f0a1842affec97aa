"""Conformance: the Vault audit files in ../shared/corpus parse with exact counts and facts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ingest.schema import KeyOp
from tests.parse_helpers import parse_file


def run(path: Path):
    p = parse_file("vault.audit", path)
    return p.events, len(p.skipped), len(p.dead), p.unanswered


def test_elastic_integration_sample(corpus: Path) -> None:
    events, skipped, dead, unanswered = run(corpus / "vault_audit_elastic_integrations_test.log")
    # 13 entries: 4 request/response pairs, 1 lone PKI help request, 1 kmip request + 3 kmip responses
    assert (len(events), skipped, dead) == (6, 7, 0)
    assert Counter(e.op for e in events) == {KeyOp.SECRET_READ: 2, KeyOp.EXPORT: 2, KeyOp.OTHER: 2}
    denied = [e for e in events if e.error_code == "permission denied"]
    assert [e.operation for e in denied] == ["update internal-ca/issue/internal-server"]
    kmip = [e for e in events if e.service == "kmip"]
    assert [(e.operation, e.success, e.error_code) for e in kmip] == [
        ("kmip DiscoverVersions", True, None),
        ("kmip Get", False, "kmip result reason 12"),
        ("kmip Get", False, "pending"),
    ]
    assert kmip[2].src_ip == "2001:db8::10" and kmip[0].src_ip == "192.168.0.10"
    # the lone PKI help request has no response, but it has no request id either (nothing to pair)
    # and is not key-related: no unanswered event
    assert unanswered == []
    # HMAC'd values stay HMAC'd and nothing is reversed or copied out of data
    secret_read = next(e for e in events if e.op is KeyOp.SECRET_READ)
    assert secret_read.details["secret_path"] == "secret/data/apps/continuous-delivery/aws-bucket-sse-c"
    assert "customer_key" not in str(secret_read.details)


def test_tfc_jwt_sample_pretty_printed_and_concatenated(corpus: Path) -> None:
    events, skipped, dead, unanswered = run(corpus / "vault_audit_tfc_jwt_tallen.json")
    assert (len(events), skipped, dead, unanswered) == (1, 11, 0, [])
    (e,) = events
    assert (e.op, e.details["secret_path"], e.src_ip) == (KeyOp.SECRET_READ, "secret/data/s3", "3.93.200.217")
