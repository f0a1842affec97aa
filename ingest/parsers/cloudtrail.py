"""AWS CloudTrail records (KMS events) -> KeyEvent.

``eventSource == "kms.amazonaws.com"`` records become events, and so do the few other services'
records that change how keys protect data (:data:`RELATED_CALLS`: an S3 object copied onto itself
under a KMS key, the account's EBS default encryption switched off or pointed at another key) and
CloudTrail's own changes to what it records. Every other record returns ``None`` and is counted as
skipped (a trail carries every service). Facts used, from the AWS KMS developer guide's CloudTrail
examples:

* the key is the ``AWS::KMS::Key`` ARN in ``resources[]``; older or partial records only name it in
  ``requestParameters.keyId`` (an ARN, a key id or an alias) or, for CreateKey,
  ``responseElements.keyMetadata.arn``;
* service-initiated records (automatic rotation, DeleteKey after the waiting period) have no
  ``userIdentity.type``; they are attributed to ``invokedBy`` / the service;
* for AssumedRole callers the stable principal is the role (``sessionIssuer.arn``), and the session
  name is kept as the actor's name;
* ``eventID`` is not unique across records in practice (AWS's own examples reuse it), so the uid
  qualifies it with a content digest (:func:`ingest.schema.event_uid`).
"""

from __future__ import annotations

from typing import Any

from ingest.parsers.base import ParseError, RawRecord, ip_or_none, json_safe, record_uid, text
from ingest.parsers.cloudtrail_ops import CLOUDTRAIL_KMS_OPS
from ingest.schema import (
    Actor,
    KeyEvent,
    KeyOp,
    KeyRef,
    KeyRefError,
    Provider,
    TimestampError,
    parse_timestamp,
)

SOURCE = "aws.cloudtrail"
KMS_SOURCE = "kms.amazonaws.com"
TRAIL_SOURCE = "cloudtrail.amazonaws.com"
_TRAIL_COVERAGE = frozenset({"StopLogging", "StartLogging", "DeleteTrail", "PutEventSelectors"})
# Other services' calls that decide which key protects data, by (eventSource, eventName). S3's
# CopyObject only when it asks for SSE-KMS (the in-place re-encryption ransomware uses); the EBS
# default-encryption switches because turning them off leaves new volumes unencrypted.
RELATED_CALLS: dict[tuple[str, str], KeyOp] = {
    ("s3.amazonaws.com", "CopyObject"): KeyOp.ENCRYPT,
    ("ec2.amazonaws.com", "DisableEbsEncryptionByDefault"): KeyOp.CONFIG_CHANGE,
    ("ec2.amazonaws.com", "EnableEbsEncryptionByDefault"): KeyOp.CONFIG_CHANGE,
    ("ec2.amazonaws.com", "ModifyEbsDefaultKmsKeyId"): KeyOp.CONFIG_CHANGE,
    ("ec2.amazonaws.com", "ResetEbsDefaultKmsKeyId"): KeyOp.CONFIG_CHANGE,
}
_SSE_KMS = frozenset({"aws:kms", "aws:kms:dsse"})
# requestParameters facts rules need, by their CloudTrail names. Never plaintext, never ciphertext:
# KMS does not log either, and kmo would not copy them if it did.
_DETAIL_PARAMS = {
    "pendingWindowInDays": "pending_window_days",
    "keySpec": "key_spec",
    "customerMasterKeySpec": "key_spec",
    "keyUsage": "key_usage",
    "origin": "key_origin",
    "multiRegion": "multi_region",
    "bypassPolicyLockoutSafetyCheck": "bypass_policy_lockout_safety_check",
    "policy": "policy",
    "granteePrincipal": "grantee_principal",
    "grantId": "grant_id",
    "retiringPrincipal": "retiring_principal",
    "operations": "grant_operations",
    "rotationPeriodInDays": "rotation_period_days",
    "encryptionAlgorithm": "algorithm",
    "signingAlgorithm": "algorithm",
    "macAlgorithm": "algorithm",
    "aliasName": "alias_name",
    "primaryRegion": "primary_region",
    "replicaRegion": "replica_region",
    "customKeyStoreId": "custom_key_store",
    "validTo": "valid_to",
    "expirationModel": "expiration_model",
}


def parse(record: RawRecord) -> KeyEvent | None:
    """Normalise one CloudTrail record.

    Returns:
        the event, or ``None`` when the record is another service's.

    Raises:
        ParseError: when the record is not a CloudTrail record or lacks what a KMS event needs.
    """
    rec = record.obj
    if not isinstance(rec, dict):
        raise ParseError(SOURCE, record.origin, f"record is a JSON {type(rec).__name__}, not an object")
    event_source = rec.get("eventSource")
    name = rec.get("eventName")
    if not isinstance(event_source, str) or not isinstance(name, str):
        raise ParseError(SOURCE, record.origin, "missing eventSource/eventName: not a CloudTrail record")
    if event_source == TRAIL_SOURCE and name in _TRAIL_COVERAGE:
        return _trail_coverage(rec, name, record)
    related = RELATED_CALLS.get((event_source, name))
    if event_source != KMS_SOURCE and (related is None or not _related_applies(rec, event_source)):
        return None
    try:
        time = parse_timestamp(rec.get("eventTime"))
    except TimestampError as exc:
        raise ParseError(SOURCE, record.origin, f"eventTime: {exc}") from None

    region = text(rec.get("awsRegion"))
    identity = rec.get("userIdentity")
    identity = identity if isinstance(identity, dict) else {}
    account = text(rec.get("recipientAccountId")) or text(identity.get("accountId"))
    params = rec.get("requestParameters")
    params = params if isinstance(params, dict) else {}
    response = rec.get("responseElements")
    response = response if isinstance(response, dict) else {}

    keys, alias = _keys(rec, params, response, region, account)
    key = keys[0] if keys else None
    if key is not None and account is None:
        account = key.uri.split(":")[4]

    provider_id = text(rec.get("eventID"))
    error_code = text(rec.get("errorCode"))
    details = {out: json_safe(params[name_]) for name_, out in _DETAIL_PARAMS.items() if name_ in params}
    if related is not None:
        details.update(_related_details(name, params))
    if name == "ScheduleKeyDeletion" and "deletionDate" in response:
        details["deletion_date"] = json_safe(response["deletionDate"])
    if isinstance(rec.get("eventType"), str):
        details["event_type"] = rec["eventType"]
    if isinstance(rec.get("vpcEndpointId"), str):  # network-activity events: the call came through it
        details["vpc_endpoint"] = rec["vpcEndpointId"][:128]
    resource = _context_resource(params)
    if resource:
        details["context_resource"] = resource
    source_ip = text(rec.get("sourceIPAddress"))
    ip = ip_or_none(source_ip)
    if source_ip and ip is None:
        details["source_host"] = source_ip  # a service name such as kms.amazonaws.com

    uid = record_uid(SOURCE, record, provider_id, rec)
    return KeyEvent(
        uid=uid,
        time=time,
        source=SOURCE,
        provider=Provider.AWS_KMS,
        op=related or CLOUDTRAIL_KMS_OPS.get(name, KeyOp.OTHER),
        operation=name,
        success=error_code is None,
        error_code=error_code,
        error_message=text(rec.get("errorMessage")),
        key=key,
        key_alias=alias,
        related_keys=tuple(keys[1:]),
        actor=_actor(identity, rec),
        src_ip=ip,
        user_agent=text(rec.get("userAgent")),
        region=region,
        account=account,
        service=event_source,
        provider_event_id=provider_id,
        request_id=text(rec.get("requestID")),
        context_keys=_context_keys(params),
        details=details,
        raw=record.text,
        origin=record.origin,
    )


def _keys(
    rec: dict[str, Any],
    params: dict[str, Any],
    response: dict[str, Any],
    region: str | None,
    account: str | None,
) -> tuple[list[KeyRef], str | None]:
    """Every key the call touched, primary first, and the alias it was addressed by."""
    keys: list[KeyRef] = []
    alias = None
    resources = rec.get("resources")
    for res in resources if isinstance(resources, list) else ():
        arn = res.get("ARN") if isinstance(res, dict) else None
        if not isinstance(arn, str):
            continue
        if ":alias/" in arn:
            alias = alias or arn.rsplit(":", 1)[1]
            continue
        try:
            ref = KeyRef.aws(arn)
        except KeyRefError:
            continue
        if ref not in keys:
            keys.append(ref)
    if keys:
        return keys, alias
    ebs = params.get("ModifyEbsDefaultKmsKeyIdRequest")
    candidates = [
        params.get("keyId"),
        params.get("targetKeyId"),
        params.get("destinationKeyId"),
        params.get("x-amz-server-side-encryption-aws-kms-key-id"),
        ebs.get("KmsKeyId") if isinstance(ebs, dict) else None,
    ]
    metadata = response.get("keyMetadata")
    if isinstance(metadata, dict):
        candidates.insert(0, metadata.get("arn"))
    for cand in candidates:
        if not isinstance(cand, str):
            continue
        if cand.startswith("alias/"):
            alias = alias or cand
        try:
            ref = KeyRef.aws(cand, region=region, account=account)
        except KeyRefError:
            continue
        if ref not in keys:
            keys.append(ref)
    return keys, alias


def _related_applies(rec: dict[str, Any], event_source: str) -> bool:
    """Whether another service's call in RELATED_CALLS is about a KMS key: S3 only under SSE-KMS."""
    if event_source != "s3.amazonaws.com":
        return True
    params = rec.get("requestParameters")
    return isinstance(params, dict) and params.get("x-amz-server-side-encryption") in _SSE_KMS


def _related_details(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """What rules need from another service's call: the object copied, or the EBS default's state."""
    if name == "CopyObject":
        bucket, obj = text(params.get("bucketName")), text(params.get("key"))
        return {
            "s3_object": f"{bucket}/{obj}"[:1024],
            "s3_copy_source": (text(params.get("x-amz-copy-source")) or "")[:1024],
        }
    state = {"DisableEbsEncryptionByDefault": False, "EnableEbsEncryptionByDefault": True}.get(name)
    return {} if state is None else {"ebs_default_encryption": state}


def _actor(identity: dict[str, Any], rec: dict[str, Any]) -> Actor:
    kind = text(identity.get("type"))
    arn = text(identity.get("arn"))
    invoked_by = text(identity.get("invokedBy"))
    principal = arn
    name = text(identity.get("userName"))
    if kind == "AssumedRole":
        ctx = identity.get("sessionContext")
        issuer = ctx.get("sessionIssuer") if isinstance(ctx, dict) else None
        issuer_arn = text(issuer.get("arn")) if isinstance(issuer, dict) else None
        if issuer_arn:
            principal = issuer_arn
            name = arn.rsplit("/", 1)[-1] if arn else name
    if kind is None and (invoked_by or rec.get("eventType") == "AwsServiceEvent"):
        kind = "AWSService"
    if principal is None:
        principal = invoked_by or text(identity.get("principalId"))
    return Actor(
        principal=principal,
        principal_type=kind,
        name=name,
        account=text(identity.get("accountId")),
        invoked_by=invoked_by,
    )


# Encryption-context entries AWS services write that name the protected resource: identifiers,
# not secrets, and what tells a secret harvest (many SecretARNs) from one busy secret.
_RESOURCE_CONTEXT = (
    "SecretARN",
    "PARAMETER_ARN",
    "aws:ebs:id",
    "aws:s3:arn",
    "aws:rds:db-id",
    "aws:lambda:FunctionArn",
)


def _context_resource(params: dict[str, Any]) -> str | None:
    ctx = params.get("encryptionContext")
    if isinstance(ctx, dict):
        for name in _RESOURCE_CONTEXT:
            value = ctx.get(name)
            if isinstance(value, str) and value:
                return value[:512]
    return None


def _context_keys(params: dict[str, Any]) -> tuple[str, ...]:
    keys: set[str] = set()
    for field_name in ("encryptionContext", "sourceEncryptionContext", "destinationEncryptionContext"):
        ctx = params.get(field_name)
        if isinstance(ctx, dict):
            keys.update(k for k in ctx if isinstance(k, str))
    return tuple(sorted(keys))


def _kms_usage_logged(params: dict[str, Any]) -> bool | None:
    """Whether a trail's new event selectors still record KMS usage (Decrypt, Encrypt, Sign ... are
    read-only management events): None when the request does not say."""
    basic = params.get("eventSelectors")
    advanced = params.get("advancedEventSelectors")
    if isinstance(basic, list):
        for sel in basic:
            if not isinstance(sel, dict) or sel.get("includeManagementEvents") is False:
                continue
            excluded = sel.get("excludeManagementEventSources") or []
            if sel.get("readWriteType", "All") in ("All", "ReadOnly") and KMS_SOURCE not in excluded:
                return True
        return False
    if isinstance(advanced, list):
        for sel in advanced:
            fields = sel.get("fieldSelectors") if isinstance(sel, dict) else None
            if not isinstance(fields, list):
                continue
            conds = {f.get("field"): f for f in fields if isinstance(f, dict)}
            category = conds.get("eventCategory", {}).get("equals", ["Management"])
            source = conds.get("eventSource", {})
            read_only = conds.get("readOnly", {}).get("equals", ["true", "false"])
            if "Management" in category and KMS_SOURCE not in (source.get("notEquals") or []) and "true" in read_only:
                return True
        return False
    return None


def _trail_coverage(rec: dict[str, Any], name: str, record: RawRecord) -> KeyEvent:
    """A change to what CloudTrail records: kmo's evidence for "silent" versus "not logged"."""
    params = rec.get("requestParameters") if isinstance(rec.get("requestParameters"), dict) else {}
    logged = _kms_usage_logged(params) if name == "PutEventSelectors" else name == "StartLogging"
    trail = params.get("name", params.get("trailName"))
    error_code = text(rec.get("errorCode"))
    identity = rec.get("userIdentity") if isinstance(rec.get("userIdentity"), dict) else {}
    try:
        time = parse_timestamp(rec.get("eventTime"))
    except TimestampError as exc:
        raise ParseError(SOURCE, record.origin, f"eventTime: {exc}") from None
    uid = record_uid(SOURCE, record, text(rec.get("eventID")), rec)
    return KeyEvent(
        uid=uid,
        time=time,
        source=SOURCE,
        provider=Provider.AWS_KMS,
        op=KeyOp.AUDIT_CONFIG,
        operation=name,
        success=error_code is None,
        error_code=error_code,
        error_message=text(rec.get("errorMessage")),
        actor=_actor(identity, rec),
        src_ip=ip_or_none(rec.get("sourceIPAddress")),
        user_agent=text(rec.get("userAgent")),
        region=text(rec.get("awsRegion")),
        account=text(rec.get("recipientAccountId")) or text(identity.get("accountId")),
        service=TRAIL_SOURCE,
        provider_event_id=text(rec.get("eventID")),
        request_id=text(rec.get("requestID")),
        details={"trail": json_safe(trail), "kms_usage_logged": logged},
        raw=record.text,
        origin=record.origin,
    )
