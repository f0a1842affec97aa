"""Thales Luna HSM audit records -> KeyEvent.

No public sample of a Luna audit log exists (see ../shared/corpus/SOURCES.md, "Gaps"), so this
parser is built from Thales's documentation and kept strict:

* the record shape is the Luna Cloud HSM (Data Protection on Demand) audit log as the Audit Query
  API exports it: a JSON list of objects with ``time`` (``2022-03-10 15:29:01 UTC``), ``source``
  (``thales/cloudhsm/<partition id>``), ``resourceid`` (service id), ``actorid`` (client id),
  ``tenantid``, ``action`` (a ``LUNA_*`` event name), ``status`` and ``meta``;
* ``action`` names are the HSM events of the Luna HSM 7 audit categories (``LUNA_LOGIN``,
  ``LUNA_GENERATE_KEY``, ``LUNA_ENCRYPT_*`` ...); keys are identified by their Object Unique
  Identifier (OUID) in ``meta``, which kmo writes as ``pkcs11:token=<partition>;x-ouid=<ouid>``.

A record lacking time, source, action or status is refused (dead-lettered), never guessed at.
The on-premises firmware log's text lines are not read: their exact layout is not published.
"""

from __future__ import annotations

from typing import Any

from ingest.parsers.base import ParseError, RawRecord, ip_or_none, json_safe, record_uid
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

SOURCE = "thales.luna"
_OK = {"ok", "success", "succeeded", "luna_ret_ok", "rc_ok", "ckr_ok", "0", "0x00000000"}

# Exact names first, then families by prefix (LUNA_ENCRYPT_INIT, LUNA_ENCRYPT_SINGLEPART, ...).
_EXACT: dict[str, KeyOp] = {
    "LUNA_LOGIN": KeyOp.LOGIN,
    "LUNA_HA_LOGIN": KeyOp.LOGIN,
    "LUNA_LOGOUT": KeyOp.OTHER,
    "LUNA_GENERATE_KEY": KeyOp.CREATE,
    "LUNA_GENERATE_KEY_PAIR": KeyOp.CREATE,
    "LUNA_CREATE_OBJECT": KeyOp.IMPORT,
    "LUNA_COPY_OBJECT": KeyOp.CREATE,
    "LUNA_DESTROY_OBJECT": KeyOp.DESTROY,
    "LUNA_MODIFY_OBJECT": KeyOp.CONFIG_CHANGE,
    "LUNA_WRAP_KEY": KeyOp.WRAP,
    "LUNA_UNWRAP_KEY": KeyOp.UNWRAP,
    "LUNA_DERIVE_KEY": KeyOp.DERIVE,
    "LUNA_GENERATE_RANDOM": KeyOp.RANDOM,
    "LUNA_SEED_RANDOM": KeyOp.RANDOM,
    "LUNA_CLONE_AS_SOURCE": KeyOp.EXPORT,
    "LUNA_CLONE_AS_TARGET": KeyOp.IMPORT,
    "LUNA_EXTRACT_CONTEXTS": KeyOp.EXPORT,
    "LUNA_INSERT_CONTEXTS": KeyOp.IMPORT,
    "LUNA_ZEROIZE": KeyOp.DESTROY,
    "LUNA_INIT_TOKEN": KeyOp.CONFIG_CHANGE,
    "LUNA_CREATE_CONTAINER": KeyOp.CONFIG_CHANGE,
    "LUNA_DELETE_CONTAINER": KeyOp.DESTROY,
    "LUNA_INIT_PIN": KeyOp.USER_CHANGE,
    "LUNA_SET_PIN": KeyOp.USER_CHANGE,
    "LUNA_SET_POLICY": KeyOp.POLICY_CHANGE,
    "LUNA_SET_CONTAINER_POLICY": KeyOp.POLICY_CHANGE,
    "LUNA_FIND_OBJECTS": KeyOp.LIST,
    "LUNA_GET_ATTRIBUTE_VALUE": KeyOp.DESCRIBE,
}
_PREFIXES: tuple[tuple[str, KeyOp], ...] = (
    ("LUNA_ENCRYPT", KeyOp.ENCRYPT),
    ("LUNA_DECRYPT", KeyOp.DECRYPT),
    ("LUNA_SIGN", KeyOp.SIGN),
    ("LUNA_VERIFY", KeyOp.VERIFY),
    ("LUNA_LOG_", KeyOp.AUDIT_CONFIG),
    ("LUNA_FIND_OBJECTS", KeyOp.LIST),
)
_OUID_KEYS = ("ouid", "objectouid", "object_ouid", "objectuid", "object_uid", "keyouid", "key_ouid")
_IP_KEYS = ("clientip", "client_ip", "sourceip", "source_ip", "ip", "ipaddress")
_ROLE_KEYS = ("role", "userrole", "user_role", "hsmrole")


def op_for(action: str) -> KeyOp:
    if action in _EXACT:
        return _EXACT[action]
    for prefix, op in _PREFIXES:
        if action.startswith(prefix):
            return op
    return KeyOp.OTHER


def _lower_keys(meta: Any) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in meta.items()} if isinstance(meta, dict) else {}


def parse(record: RawRecord) -> KeyEvent | None:
    """Normalise one Luna Cloud HSM audit record.

    Raises:
        ParseError: when a required field is missing or malformed.
    """
    rec = record.obj
    if not isinstance(rec, dict):
        raise ParseError(SOURCE, record.origin, "not a Luna audit record (expected a JSON object)")
    missing = [k for k in ("time", "source", "action", "status") if not isinstance(rec.get(k), str) or not rec[k]]
    if missing:
        raise ParseError(SOURCE, record.origin, f"not a Luna audit record (missing {', '.join(missing)})")
    action = rec["action"].strip().upper()
    if not action.startswith("LUNA_"):
        raise ParseError(SOURCE, record.origin, f"action {action[:40]!r} is not a Luna HSM event")
    text_time = rec["time"].strip()
    try:
        time = parse_timestamp(text_time.removesuffix(" UTC").removesuffix("UTC").strip())
    except TimestampError as exc:
        raise ParseError(SOURCE, record.origin, f"time: {exc}") from None
    source = rec["source"].strip()
    partition = source.rsplit("/", 1)[-1] if "/" in source else source
    meta = _lower_keys(rec.get("meta"))
    ouid = next((meta[k] for k in _OUID_KEYS if isinstance(meta.get(k), str) and meta[k]), None)
    key = None
    if ouid:
        try:
            key = KeyRef.hsm_object(partition, "x-ouid", ouid.lower())
        except KeyRefError:
            key = None
    status = rec["status"].strip()
    success = status.lower() in _OK or status.upper().endswith("_OK")
    ip = next((meta[k] for k in _IP_KEYS if isinstance(meta.get(k), str)), None)
    role = next((meta[k] for k in _ROLE_KEYS if isinstance(meta.get(k), (str, int))), None)
    actor = rec.get("actorid") if isinstance(rec.get("actorid"), str) and rec.get("actorid") else None
    uid = record_uid(SOURCE, record, None, rec)
    return KeyEvent(
        uid=uid,
        time=time,
        source=SOURCE,
        provider=Provider.HSM,
        op=op_for(action),
        operation=action,
        success=success,
        error_code=None if success else status,
        key=key,
        actor=Actor(
            principal=actor,
            principal_type=str(role) if role is not None else "client",
            account=rec.get("tenantid") if isinstance(rec.get("tenantid"), str) else None,
        ),
        src_ip=ip_or_none(ip),
        account=partition,
        service="luna-cloud-hsm",
        details={"source": source, "resource_id": json_safe(rec.get("resourceid")), "meta": json_safe(meta)},
        raw=record.text,
        origin=record.origin,
    )
