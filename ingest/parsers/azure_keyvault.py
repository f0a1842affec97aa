"""Azure Key Vault logs -> KeyEvent.

Reads the shapes these logs are delivered in:

* ``AuditEvent`` resource logs as written to storage (``PT1H.json`` blobs, one JSON object per
  line), sent to Event Hubs (``{"records": [...]}``), or exported from Log Analytics (the
  ``AZKVAuditLogs`` / ``AzureDiagnostics`` columns: ``TimeGenerated``, ``OperationName``,
  ``CallerIpAddress``, ``Id``/``id_s``, ``HttpStatusCode`` ...), as a JSON array or lines;
* Activity Log (control plane) records whose ``operationName`` is an RBAC action under
  ``Microsoft.KeyVault/`` (the Panther-normalised samples in the corpus are of this kind).

The key id is ``properties.id`` (``https://<vault>.vault.azure.net/keys/<name>/<version>``) for
audit events; for Activity Log records it is built from ``resourceId`` (``.../vaults/<vault>/keys/
<name>``) with the public-cloud ``vault.azure.net`` suffix. Success follows ``resultType``
(``Success``/``Succeeded``), unless ``httpStatusCode`` says 4xx/5xx. Identity claims give the
principal: UPN for people, object id or app id for applications.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from ingest.parsers.azure_ops import ACTIVITY_OPS, AUDIT_EVENT_OPS
from ingest.parsers.base import ParseError, RawRecord, ip_or_none, record_uid, text
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

SOURCE = "azure.keyvault"
_UPN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
_OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
_RESOURCE = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/(?:resourcegroups/[^/]+/)?providers/microsoft\.keyvault/"
    r"(?:vaults/(?P<vault>[^/]+)(?:/(?P<kind>keys|secrets|certificates)/(?P<name>[^/]+))?"
    r"|locations/[^/]+/deletedvaults/(?P<deleted>[^/]+))",
    re.IGNORECASE,
)
_OBJECT_ID = re.compile(r"^https://[^/]+/(?P<kind>keys|secrets|certificates)/", re.IGNORECASE)
_OK = {"success", "succeeded"}

# field -> the names it goes by in native, Event Hub and Log Analytics exports
_ALIASES = {
    "time": ("time", "TimeGenerated", "timeGenerated"),
    "operationName": ("operationName", "OperationName"),
    "resultType": ("resultType", "ResultType"),
    "resultSignature": ("resultSignature", "ResultSignature"),
    "callerIpAddress": ("callerIpAddress", "CallerIpAddress", "CallerIPAddress"),
    "resourceId": ("resourceId", "ResourceId", "_ResourceId"),
    "identity": ("identity", "Identity"),
    "category": ("category", "Category"),
    "correlationId": ("correlationId", "CorrelationId"),
    "location": ("location", "Location"),
}


def _get(rec: dict[str, Any], field: str) -> Any:
    for name in _ALIASES[field]:
        if name in rec:
            return rec[name]
    return None


def parse(record: RawRecord) -> KeyEvent | None:
    """Normalise one Key Vault AuditEvent or Activity Log record.

    Returns:
        the event, or None for Activity Log records of other resource providers.

    Raises:
        ParseError: for records of neither kind.
    """
    rec = record.obj
    if not isinstance(rec, dict):
        raise ParseError(SOURCE, record.origin, f"record is a JSON {type(rec).__name__}, not an object")
    operation = text(_get(rec, "operationName"))
    if operation is None:
        raise ParseError(SOURCE, record.origin, "no operationName: not an Azure Key Vault or Activity Log record")
    properties = rec.get("properties") if isinstance(rec.get("properties"), dict) else {}
    details: dict[str, Any] = {}
    if "/" in operation:  # Activity Log: an RBAC action
        lowered = operation.lower()
        resource = str(_get(rec, "resourceId") or "").lower()
        if lowered.startswith("microsoft.insights/diagnosticsettings/") and "/microsoft.keyvault/" in resource:
            # Key Vault's AuditEvent logs go wherever its diagnostic settings send them: removing one
            # can silence the vault's audit trail.
            op = KeyOp.AUDIT_CONFIG
            details["diagnostic_setting_action"] = lowered.rsplit("/", 1)[-1]
        elif lowered.startswith("microsoft.keyvault/"):
            op = ACTIVITY_OPS.get(lowered.removeprefix("microsoft.keyvault/"), KeyOp.OTHER)
        else:
            return None
        details["log"] = "activity"
    else:
        op = AUDIT_EVENT_OPS.get(operation, KeyOp.OTHER)
        details["log"] = "audit"
    try:
        time = parse_timestamp(_get(rec, "time"))
    except TimestampError as exc:
        raise ParseError(SOURCE, record.origin, f"time: {exc}") from None

    object_id = text(properties.get("id")) or text(rec.get("Id")) or text(rec.get("id_s"))
    resource_id = text(_get(rec, "resourceId")) or ""
    key, version = None, None
    if object_id and _OBJECT_ID.match(object_id):
        kind = _OBJECT_ID.match(object_id).group("kind").lower()  # type: ignore[union-attr]
        if kind == "keys":
            with contextlib.suppress(KeyRefError):
                key, version = KeyRef.azure(object_id)
        else:
            details[f"{kind[:-1]}_id"] = object_id
    m = _RESOURCE.search(resource_id)
    if key is None and m and m.group("kind") and m.group("kind").lower() == "keys":
        with contextlib.suppress(KeyRefError):
            key, version = KeyRef.azure(f"https://{m.group('vault').lower()}.vault.azure.net/keys/{m.group('name')}")
    elif m and m.group("kind") and m.group("kind").lower() != "keys":
        details[f"{m.group('kind').lower()[:-1]}_name"] = m.group("name")
    if m and (m.group("vault") or m.group("deleted")):
        details["vault"] = (m.group("vault") or m.group("deleted")).lower()

    result = (text(_get(rec, "resultType")) or "").lower()
    signature = _get(rec, "resultSignature")
    status = properties.get("httpStatusCode", rec.get("HttpStatusCode", rec.get("httpStatusCode_d")))
    http_failed = isinstance(status, (int, float)) and not isinstance(status, bool) and status >= 400
    success = result in _OK and not http_failed
    error_code = None
    if not success:
        error_code = str(signature) if signature not in (None, "") else (str(int(status)) if http_failed else result)
        error_code = error_code or "Failure"

    identity = _get(rec, "identity")
    claims: dict[str, Any] = {}
    if isinstance(identity, dict):
        raw_claims = identity.get("claim", identity.get("claims"))
        claims = raw_claims if isinstance(raw_claims, dict) else {}
    upn = text(claims.get(_UPN)) or text(claims.get("upn"))
    oid = text(claims.get(_OID)) or text(claims.get("oid"))
    appid = text(claims.get("appid"))
    principal = upn or oid or appid or text(rec.get("caller"))
    uid = record_uid(SOURCE, record, None, rec)
    return KeyEvent(
        uid=uid,
        time=time,
        source=SOURCE,
        provider=Provider.AZURE_KEYVAULT,
        op=op,
        operation=operation,
        success=success,
        error_code=error_code,
        error_message=text(rec.get("resultDescription")) if not success else None,
        key=key,
        key_version=version,
        actor=Actor(
            principal=principal,
            principal_type="User" if upn else ("Application" if (appid or oid) else None),
            name=upn,
            account=text(rec.get("tenantId")),
            invoked_by=appid if upn else None,
        ),
        src_ip=ip_or_none(_get(rec, "callerIpAddress")),
        user_agent=text(properties.get("clientInfo")),
        region=text(_get(rec, "location")),
        account=m.group("sub").lower() if m else None,
        service="vault.azure.net",
        provider_event_id=None,
        request_id=text(_get(rec, "correlationId")),
        details=details,
        raw=record.text,
        origin=record.origin,
    )
