"""GCP Cloud Audit Logs LogEntry (Cloud KMS) -> KeyEvent.

Reads LogEntry JSON as the Logging API returns it and as log sinks export it (JSON, NDJSON), and
the Panther-normalised variant (``protoPayload.at_sign_type`` instead of ``@type``, timestamps
like ``2025-12-15 15:40:47.284488263``). Facts used (cloud.google.com/kms/docs/logging):

* ``protoPayload.serviceName == "cloudkms.googleapis.com"``; other services' entries are skipped,
  except ``SetIamPolicy`` on a project that changes ``auditConfigs`` (Data Access logs switched on
  or off: without them Encrypt/Decrypt are invisible, and silence would read as "unused");
* the key and version come from ``resourceName`` (``.../cryptoKeys/k[/cryptoKeyVersions/v]``); the
  caller's project (``resource.labels.project_id``) may differ from the key's, which is itself a
  signal (cross-project use);
* principal from ``authenticationInfo.principalEmail``, delegation chain from
  ``serviceAccountDelegationInfo``; caller IP and user agent from ``requestMetadata``;
* ``status.code`` is a google.rpc.Code: 0 or absent is success;
* ``insertId`` identifies the entry within its log.
"""

from __future__ import annotations

from typing import Any

from ingest.parsers.base import ParseError, RawRecord, ip_or_none, json_safe, record_uid, text
from ingest.parsers.gcp_ops import GCP_KMS_OPS, GRPC_CODES
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

SOURCE = "gcp.audit"
KMS_SERVICE = "cloudkms.googleapis.com"
_AUDIT_LOG_TYPE = "type.googleapis.com/google.cloud.audit.AuditLog"


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse(record: RawRecord) -> KeyEvent | None:
    """Normalise one LogEntry.

    Raises:
        ParseError: when the record is not a Cloud Audit Log entry.
    """
    entry = record.obj
    if not isinstance(entry, dict) or not isinstance(entry.get("protoPayload"), dict):
        raise ParseError(SOURCE, record.origin, "not a Cloud Audit Logs entry (no protoPayload object)")
    payload = entry["protoPayload"]
    kind = payload.get("@type", payload.get("at_sign_type"))
    if kind is not None and kind != _AUDIT_LOG_TYPE:
        raise ParseError(SOURCE, record.origin, f"protoPayload is {str(kind)[:80]!r}, not an AuditLog")
    service = text(payload.get("serviceName"))
    method = text(payload.get("methodName"))
    if service is None or method is None:
        raise ParseError(SOURCE, record.origin, "AuditLog without serviceName/methodName")
    short = method.rsplit(".", 1)[-1]
    details: dict[str, Any] = {}
    request = _d(payload.get("request"))
    if service != KMS_SERVICE:
        config = _audit_config_change(short, request)
        if config is None:
            return None
        details["audit_configs"] = config
        op = KeyOp.AUDIT_CONFIG
    else:
        op = GCP_KMS_OPS.get(short, KeyOp.OTHER)
    try:
        time = parse_timestamp(entry.get("timestamp"))
    except TimestampError as exc:
        raise ParseError(SOURCE, record.origin, f"timestamp: {exc}") from None

    key, version = None, None
    for candidate in (payload.get("resourceName"), request.get("name"), request.get("resource")):
        if isinstance(candidate, str):
            try:
                key, version = KeyRef.gcp(candidate)
                break
            except KeyRefError:
                continue
    labels = _d(_d(entry.get("resource")).get("labels"))
    caller_project = text(labels.get("project_id"))
    key_project = key.uri.split("/")[1] if key else None
    location = key.uri.split("/")[3] if key else text(labels.get("location"))
    if caller_project and key_project and caller_project != key_project:
        details["resource_project"] = caller_project

    if short == "UpdateCryptoKeyVersion":
        state = _d(request.get("cryptoKeyVersion")).get("state")
        details["requested_state"] = json_safe(state)
        op = {"DISABLED": KeyOp.DISABLE, "ENABLED": KeyOp.ENABLE}.get(state, op)
    elif short == "UpdateCryptoKey":
        crypto_key = _d(request.get("cryptoKey"))
        if "rotationPeriod" in crypto_key or "nextRotationTime" in crypto_key:
            op = KeyOp.ROTATION_CONFIG
            details["rotation_period"] = json_safe(crypto_key.get("rotationPeriod"))
    elif short == "SetIamPolicy" and service == KMS_SERVICE:
        details["policy"] = json_safe(_d(request.get("policy")))
    elif short == "CreateCryptoKey":
        crypto_key = _d(request.get("cryptoKey"))
        for name in ("purpose", "rotationPeriod"):
            if name in crypto_key:
                details[name] = json_safe(crypto_key[name])
        template = _d(crypto_key.get("versionTemplate"))
        for name in ("algorithm", "protectionLevel"):
            if name in template:
                details[name] = json_safe(template[name])
    permissions = [
        json_safe(a.get("permission")) for a in payload.get("authorizationInfo") or [] if isinstance(a, dict)
    ]
    if permissions:
        details["permissions"] = permissions
    log_name = text(entry.get("logName"))
    if log_name:
        details["log"] = log_name.rsplit("%2F", 1)[-1].rsplit("/", 1)[-1]

    status = _d(payload.get("status"))
    code = status.get("code")
    failed = isinstance(code, int) and not isinstance(code, bool) and code != 0
    auth = _d(payload.get("authenticationInfo"))
    email = text(auth.get("principalEmail"))
    delegation = auth.get("serviceAccountDelegationInfo")
    invoked_by = None
    if isinstance(delegation, list) and delegation:
        first = _d(_d(delegation[0]).get("firstPartyPrincipal"))
        invoked_by = text(first.get("principalEmail"))
    meta = _d(payload.get("requestMetadata"))
    insert_id = text(entry.get("insertId"))
    uid = record_uid(SOURCE, record, insert_id, entry)
    return KeyEvent(
        uid=uid,
        time=time,
        source=SOURCE,
        provider=Provider.GCP_KMS,
        op=op,
        operation=short,
        success=not failed,
        error_code=GRPC_CODES.get(code, str(code)) if failed else None,
        error_message=text(status.get("message")) if failed else None,
        key=key,
        key_version=version,
        actor=Actor(
            principal=email or text(auth.get("principalSubject")),
            principal_type=_principal_type(email),
            name=email,
            account=_principal_project(email),
            invoked_by=invoked_by,
        ),
        src_ip=ip_or_none(meta.get("callerIp")),
        user_agent=text(meta.get("callerSuppliedUserAgent")),
        region=location,
        account=key_project or caller_project,
        service=service,
        provider_event_id=insert_id,
        request_id=insert_id,
        details=details,
        raw=record.text,
        origin=record.origin,
    )


def _principal_type(email: str | None) -> str | None:
    if email is None:
        return None
    if email.endswith(".gserviceaccount.com"):
        return "ServiceAccount"
    return "User"


def _principal_project(email: str | None) -> str | None:
    """The project a user-managed service account belongs to (``name@<project>.iam.gserviceaccount.com``)."""
    if email and "@" in email and email.endswith(".iam.gserviceaccount.com"):
        return email.split("@", 1)[1].removesuffix(".iam.gserviceaccount.com")
    return None


def _audit_config_change(method: str, request: dict[str, Any]) -> Any:
    """The Cloud KMS audit configs a project-level SetIamPolicy sets, or None if it sets none."""
    if method != "SetIamPolicy":
        return None
    policy = _d(request.get("policy"))
    mask = str(request.get("updateMask", ""))
    configs = policy.get("auditConfigs")
    if configs is None and "auditConfigs" not in mask:
        return None
    kms = [c for c in configs or [] if isinstance(c, dict) and c.get("service") in (KMS_SERVICE, "allServices")]
    return json_safe(kms)
