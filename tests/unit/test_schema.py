"""The event contract: OCSF derivation, wire round trips, key references, timestamps, uids."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from ingest.schema import (
    OCSF_VERSION,
    Actor,
    DecodeError,
    EventClass,
    KeyEvent,
    KeyOp,
    KeyRef,
    KeyRefError,
    Provider,
    TimestampError,
    decode,
    encode,
    event_uid,
    parse_timestamp,
    type_uid,
)

ARN = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def sample(**changes) -> KeyEvent:
    base = dict(
        uid="aws.cloudtrail:abc:0123456789abcdef",
        time=datetime(2026, 11, 9, 3, 12, 7, 250000, tzinfo=UTC),
        source="aws.cloudtrail",
        provider=Provider.AWS_KMS,
        op=KeyOp.DECRYPT,
        operation="Decrypt",
        success=True,
        key=KeyRef.aws(ARN),
        key_alias="alias/payments",
        related_keys=(KeyRef.aws(ARN.replace("1234abcd", "0987dcba")),),
        actor=Actor(
            principal="arn:aws:iam::111122223333:role/app",
            principal_type="AssumedRole",
            name="i-1",
            account="111122223333",
            invoked_by=None,
        ),
        src_ip="10.0.0.7",
        user_agent="Boto3/1.34",
        region="us-west-2",
        account="111122223333",
        service="kms.amazonaws.com",
        provider_event_id="abc",
        request_id="req-1",
        context_keys=("tenant",),
        details={"algorithm": "SYMMETRIC_DEFAULT"},
        raw='{"eventName":"Decrypt"}',
        origin="file:///x.json#0",
    )
    base.update(changes)
    return KeyEvent(**base)


@pytest.mark.parametrize("op", list(KeyOp))
def test_every_op_has_a_valid_ocsf_class_and_derived_type_uid(op: KeyOp) -> None:
    doc = sample(op=op).to_ocsf()
    assert doc["class_uid"] in (EventClass.API_ACTIVITY, EventClass.ENTITY_MANAGEMENT)
    assert doc["category_uid"] == doc["class_uid"] // 1000
    assert doc["type_uid"] == doc["class_uid"] * 100 + doc["activity_id"]
    assert doc["type_uid"] == type_uid(doc["class_uid"], doc["activity_id"])
    assert doc["metadata"]["version"] == OCSF_VERSION


def test_usage_is_api_activity_and_lifecycle_is_entity_management() -> None:
    assert KeyOp.DECRYPT.event_class is EventClass.API_ACTIVITY and KeyOp.DECRYPT.is_usage
    assert KeyOp.DESCRIBE.event_class is EventClass.API_ACTIVITY and not KeyOp.DESCRIBE.is_usage
    assert KeyOp.SCHEDULE_DESTROY.event_class is EventClass.ENTITY_MANAGEMENT
    assert KeyOp.DISABLE.activity_id == 9 and KeyOp.ENABLE.activity_id == 8


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"success": False, "error_code": "AccessDeniedException", "error_message": "not authorized"},
        {"key": None, "key_alias": None, "related_keys": (), "op": KeyOp.RANDOM},
        {"src_ip": None, "user_agent": None, "actor": Actor()},
        {"key_version": "3", "details": {}},
    ],
)
def test_wire_round_trip_is_lossless(changes: dict) -> None:
    event = sample(**changes)
    assert decode(encode(event)) == event


def test_wire_form_places_the_key_where_ocsf_consumers_look() -> None:
    doc = sample().to_ocsf()
    assert doc["resources"][0] == {
        "type": "crypto_key",
        "uid": ARN,
        "name": "alias/payments",
        "data": {"kms": {"op": "decrypt", "provider": "aws-kms"}},
    }
    assert doc["actor"]["user"]["uid"] == "arn:aws:iam::111122223333:role/app"
    assert doc["raw_data"] == '{"eventName":"Decrypt"}'
    assert doc["time"] == 1794193927250


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1,2]", "not a JSON object"),
        (b'{"metadata":{}}', "not a kmo event"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_decode_errors_keep_the_raw_bytes(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(raw)
    assert reason in info.value.reason
    assert info.value.raw == raw


def test_decode_rejects_an_unknown_op() -> None:
    doc = sample().to_ocsf()
    doc["activity_name"] = "teleport"
    with pytest.raises(DecodeError):
        decode(orjson.dumps(doc))


def test_partition_key_is_the_key_uri_or_an_account_scope() -> None:
    assert sample().partition_key == ARN.encode()
    assert sample(key=None).partition_key == b"aws-kms:111122223333:us-west-2"


class TestKeyRef:
    def test_aws_forms(self) -> None:
        assert KeyRef.aws(ARN).uri == ARN
        assert KeyRef.aws("1234abcd-12ab-34cd-56ef-1234567890ab", region="us-west-2", account="111122223333").uri == ARN
        alias = KeyRef.aws("alias/app", region="us-east-1", account="111122223333")
        assert alias.uri == "arn:aws:kms:us-east-1:111122223333:alias/app" and alias.is_alias
        mrk = KeyRef.aws("mrk-1234abcd12ab34cd56ef1234567890ab", region="us-west-2", account="111122223333")
        assert mrk.uri.endswith(":key/mrk-1234abcd12ab34cd56ef1234567890ab")
        with pytest.raises(KeyRefError):
            KeyRef.aws("1234abcd-12ab-34cd-56ef-1234567890ab")  # no region/account to resolve it
        with pytest.raises(KeyRefError):
            KeyRef.aws("arn:aws:s3:::bucket")

    def test_gcp_splits_the_version(self) -> None:
        name = "projects/p/locations/global/keyRings/r/cryptoKeys/k"
        assert KeyRef.gcp(name) == (KeyRef(Provider.GCP_KMS, name), None)
        assert KeyRef.gcp(name + "/cryptoKeyVersions/3") == (KeyRef(Provider.GCP_KMS, name), "3")
        assert KeyRef.gcp("//cloudkms.googleapis.com/" + name)[0].uri == name
        with pytest.raises(KeyRefError):
            KeyRef.gcp("projects/p/keyRings/r")

    def test_azure_is_case_insensitive_and_splits_the_version(self) -> None:
        ref, version = KeyRef.azure("https://Contoso.vault.azure.net/keys/MyKey/0123abcd")
        assert ref.uri == "https://contoso.vault.azure.net/keys/mykey" and version == "0123abcd"
        with pytest.raises(KeyRefError):
            KeyRef.azure("http://contoso.vault.azure.net/keys/k")

    def test_vault_and_pkcs11(self) -> None:
        assert KeyRef.vault("transit", "payments").uri == "vault:transit/keys/payments"
        assert KeyRef.from_native("vault", "transit/keys/payments") == KeyRef.vault("transit", "payments")
        ref = KeyRef.pkcs11("prod token", label="db/master", object_id=b"\x01\xab")
        assert ref.uri == "pkcs11:token=prod%20token;object=db%2Fmaster;id=%01%ab"
        assert KeyRef.from_native("hsm", "db/master", token="prod token").uri.startswith("pkcs11:token=prod%20token")
        with pytest.raises(KeyRefError):
            KeyRef.from_native("hsm", "label-without-token")


class TestTimestamps:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2023-07-10T11:57:49Z", datetime(2023, 7, 10, 11, 57, 49, tzinfo=UTC)),
            ("2024-01-01 00:00:00.000", datetime(2024, 1, 1, tzinfo=UTC)),
            ("2025-03-05 21:19:44.123456789", datetime(2025, 3, 5, 21, 19, 44, 123456, tzinfo=UTC)),
            ("2026-12-04T12:00:00.5+02:00", datetime(2026, 12, 4, 10, 0, 0, 500000, tzinfo=UTC)),
        ],
    )
    def test_accepted_forms_become_utc(self, text: str, expected: datetime) -> None:
        assert parse_timestamp(text) == expected

    @pytest.mark.parametrize("bad", [None, 12, "", "yesterday", "2023-13-40T00:00:00Z", "9" * 100])
    def test_everything_else_is_a_timestamp_error(self, bad: object) -> None:
        with pytest.raises(TimestampError):
            parse_timestamp(bad)


class TestEventUid:
    def test_deterministic_and_insensitive_to_formatting(self) -> None:
        rec = {"eventID": "e1", "eventName": "Decrypt", "x": [1, 2]}
        same = orjson.loads(b'{ "x" : [1,2], "eventName":"Decrypt", "eventID":"e1" }')
        assert event_uid("s", "e1", rec) == event_uid("s", "e1", same)
        assert event_uid("s", "e1", rec).startswith("s:e1:")

    def test_distinct_records_sharing_a_provider_id_never_collide(self) -> None:
        assert event_uid("s", "1", {"eventName": "DisableKey"}) != event_uid("s", "1", {"eventName": "Decrypt"})

    def test_records_without_a_provider_id_are_content_addressed(self) -> None:
        uid = event_uid("s", None, {"a": 1})
        assert uid.startswith("s:sha256:") and len(uid) == len("s:sha256:") + 64
