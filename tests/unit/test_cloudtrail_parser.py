"""CloudTrail parser: golden fixtures (raw record -> exact normalised event) and its refusals."""

from __future__ import annotations

import json

import orjson
import pytest

from ingest.parsers import PARSERS, ParseError, RawRecord
from ingest.parsers.cloudtrail import SOURCE, parse
from ingest.schema import KeyOp, encode
from tests.conftest import FIXTURES

CASES = sorted(
    p for p in (FIXTURES / "cloudtrail").glob("*.json") if not p.name.endswith(".expected.json")
)  # goldens: test_goldens.py


def run(obj: object, text: str | None = None):
    text = text if text is not None else json.dumps(obj)
    return parse(RawRecord(text, obj, "test#0"))


def test_registered_under_its_source_name() -> None:
    assert PARSERS[SOURCE] is parse


def test_fixture_facts() -> None:
    by_name = {p.stem: json.loads(p.read_text()) for p in CASES}
    e = run(by_name["decrypt_assumed_role"])
    assert e.actor.principal == "arn:aws:iam::111122223333:role/payments-app" and e.actor.name == "i-0abc"
    assert e.context_keys == ("service", "tenant") and e.op is KeyOp.DECRYPT and e.src_ip == "10.1.2.3"
    e = run(by_name["create_key_no_resources"])
    assert e.key.uri.endswith("key/0987dcba-09fe-87dc-65ba-ab0987654321") and e.details["key_spec"] == "RSA_4096"
    e = run(by_name["rotate_key_service_event"])
    assert e.actor.principal_type == "AWSService" and e.src_ip is None and e.details["source_host"] == "AWS Internal"
    e = run(by_name["schedule_deletion_denied_alias"])
    assert not e.success and e.error_code == "AccessDeniedException" and e.key.is_alias
    assert e.key_alias == "alias/prod/master" and e.details["pending_window_days"] == 7
    e = run(by_name["reencrypt_two_keys"])
    assert len(e.related_keys) == 1 and e.context_keys == ("a", "b")


def test_other_services_are_skipped_not_errors() -> None:
    assert (
        run({"eventSource": "s3.amazonaws.com", "eventName": "GetObject", "eventTime": "2026-01-01T00:00:00Z"}) is None
    )
    # a copy that does not ask for SSE-KMS does not choose a key: skipped too
    plain = {"bucketName": "b", "key": "k", "x-amz-copy-source": "b/k", "x-amz-server-side-encryption": "AES256"}
    copy = {"eventSource": "s3.amazonaws.com", "eventName": "CopyObject", "eventTime": "2026-01-01T00:00:00Z"}
    assert run({**copy, "requestParameters": plain}) is None


_ARN = "arn:aws:kms:eu-west-1:111122223333:key/0000aaaa-0000-4000-8000-000000000001"
_BASE = {
    "eventTime": "2026-01-01T00:00:00Z",
    "awsRegion": "eu-west-1",
    "recipientAccountId": "111122223333",
    "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/ops", "accountId": "111122223333"},
}


def test_calls_of_other_services_that_choose_a_key_are_events() -> None:
    e = run(
        {
            **_BASE,
            "eventSource": "s3.amazonaws.com",
            "eventName": "CopyObject",
            "requestParameters": {
                "bucketName": "b",
                "key": "k.csv",
                "x-amz-copy-source": "b/k.csv",
                "x-amz-server-side-encryption": "aws:kms",
                "x-amz-server-side-encryption-aws-kms-key-id": _ARN,
            },
        }
    )
    assert (e.op, e.service, e.key.uri) == (KeyOp.ENCRYPT, "s3.amazonaws.com", _ARN)
    assert e.details["s3_object"] == "b/k.csv" and e.details["s3_copy_source"] == "b/k.csv"
    e = run({**_BASE, "eventSource": "ec2.amazonaws.com", "eventName": "DisableEbsEncryptionByDefault"})
    assert (e.op, e.key, e.details["ebs_default_encryption"]) == (KeyOp.CONFIG_CHANGE, None, False)
    e = run(
        {
            **_BASE,
            "eventSource": "ec2.amazonaws.com",
            "eventName": "ModifyEbsDefaultKmsKeyId",
            "requestParameters": {"ModifyEbsDefaultKmsKeyIdRequest": {"KmsKeyId": _ARN}},
        }
    )
    assert e.key.uri == _ARN and "ebs_default_encryption" not in e.details
    assert run({**_BASE, "eventSource": "ec2.amazonaws.com", "eventName": "CreateVolume"}) is None


def test_network_activity_events_keep_their_endpoint() -> None:
    e = run(
        {
            **_BASE,
            "eventSource": "kms.amazonaws.com",
            "eventName": "Decrypt",
            "eventType": "AwsVpceEvent",
            "eventCategory": "NetworkActivity",
            "vpcEndpointId": "vpce-0a1b2c3d4e5f60718",
            "errorCode": "VpceAccessDenied",
        }
    )
    assert e.details["event_type"] == "AwsVpceEvent" and e.details["vpc_endpoint"] == "vpce-0a1b2c3d4e5f60718"
    assert not e.success and e.error_code == "VpceAccessDenied"


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ([1, 2], "not an object"),
        ("a string", "not an object"),
        ({"eventName": "Decrypt"}, "not a CloudTrail record"),
        ({"eventSource": "kms.amazonaws.com", "eventName": 5}, "not a CloudTrail record"),
        ({"eventSource": "kms.amazonaws.com", "eventName": "Decrypt"}, "eventTime"),
        ({"eventSource": "kms.amazonaws.com", "eventName": "Decrypt", "eventTime": "later"}, "eventTime"),
    ],
)
def test_refusals_carry_source_origin_and_reason(record: object, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        run(record)
    assert reason in info.value.reason and info.value.source == SOURCE and info.value.origin == "test#0"


def test_hostile_field_types_do_not_crash() -> None:
    rec = {
        "eventSource": "kms.amazonaws.com",
        "eventName": "Decrypt",
        "eventTime": "2026-01-01T00:00:00Z",
        "userIdentity": "root",
        "resources": [None, 3, {"ARN": 7}, {"ARN": "arn:aws:s3:::b"}],
        "requestParameters": {"keyId": ["x"], "encryptionContext": {"k": {"nested": 1}}},
        "sourceIPAddress": ["1.2.3.4"],
        "errorCode": 500,
    }
    e = run(rec)
    assert e is not None and e.key is None and e.success and e.context_keys == ("k",)
    assert orjson.loads(encode(e))["activity_name"] == "decrypt"
