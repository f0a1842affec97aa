"""HashiCorp Vault / OpenBao audit device entries (file or socket device, JSON) -> KeyEvent.

Facts this relies on (Vault's audit package and docs; checked against a real OpenBao 2.7 here):

* every request is logged twice, ``type=request`` then ``type=response``, sharing ``request.id``.
  The response entry repeats the request and adds the outcome, so **responses become events** and
  requests are only paired (see :func:`pair_id`); a request whose response never appears becomes
  an event of its own at the end of the input (:func:`parse_unanswered`): the attempt happened and
  its outcome is unknown;
* strings are HMAC'd with a per-device salt and stay HMAC'd here; ``request.path`` and ints are
  not, so the key name (from the path) and ``response.data.key_version`` are readable;
* the same request logged by two devices has different HMACs, so the uid digests only the unhashed
  ``request.id``, ``path``, ``operation`` and entry type;
* ``auth.policies`` containing ``root`` means the root token was used; ``error`` holding
  "permission denied" is an authorisation failure;
* KMIP engine entries (``kmip-request``/``kmip-response``) carry KMIP operation codes and results.

Becomes an event: transit operations, KV secret access, audit-device changes, policy changes,
token creation, any root-token use and any permission-denied response. Other entries (login
renewals, ``sys/capabilities-self``, PKI help) are Vault's own business and are skipped.
"""

from __future__ import annotations

import re
from typing import Any

from ingest.parsers.base import ParseError, RawRecord, ip_or_none, json_safe, record_uid
from ingest.parsers.vault_ops import KMIP_NAMES, KMIP_OPS, KV_OPS, SYS_KEY_CONTROL, TRANSIT_PATHS
from ingest.schema import Actor, KeyEvent, KeyOp, KeyRef, KeyRefError, Provider, TimestampError
from ingest.schema import parse_timestamp as _ts

SOURCE = "vault.audit"
NO_RESPONSE = "NoResponseLogged"
_ADDR_PORT = re.compile(r"^\[?(?P<ip>[0-9A-Fa-f:.]+?)\]?(?::\d+)?$")


def pair_id(obj: Any) -> tuple[str, str] | None:
    """``(request id, "request"|"response")`` for request/response entries, else None."""
    if not isinstance(obj, dict) or obj.get("type") not in ("request", "response"):
        return None
    req = obj.get("request")
    rid = req.get("id") if isinstance(req, dict) else None
    return (rid, obj["type"]) if isinstance(rid, str) and rid else None


def parse(record: RawRecord) -> KeyEvent | None:
    """Normalise one audit entry; request entries return None (their response is the event).

    Raises:
        ParseError: for anything that is not a Vault audit entry.
    """
    entry = _entry(record)
    kind = entry["type"]
    if kind in ("kmip-request", "kmip-response"):
        return _kmip(entry, record) if kind == "kmip-response" else None
    if kind == "request":
        return None
    return _event(entry, record, answered=True)


def parse_unanswered(record: RawRecord) -> KeyEvent | None:
    """An event for a request entry whose response never appeared: outcome unknown, kept as a failure
    with error code ``NoResponseLogged`` so nothing that was attempted goes unrecorded."""
    entry = _entry(record)
    return _event(entry, record, answered=False) if entry["type"] == "request" else None


def _entry(record: RawRecord) -> dict[str, Any]:
    entry = record.obj
    if not isinstance(entry, dict):
        raise ParseError(SOURCE, record.origin, f"entry is a JSON {type(entry).__name__}, not an object")
    kind = entry.get("type")
    if kind not in ("request", "response", "kmip-request", "kmip-response"):
        raise ParseError(SOURCE, record.origin, f"not a Vault audit entry (type={str(kind)[:40]!r})")
    if not isinstance(entry.get("request"), dict):
        raise ParseError(SOURCE, record.origin, "audit entry without a request object")
    return entry


def _time(entry: dict[str, Any], record: RawRecord):  # -> datetime
    try:
        return _ts(entry.get("time"))
    except TimestampError as exc:
        raise ParseError(SOURCE, record.origin, f"time: {exc}") from None


def _ip(address: Any) -> str | None:
    if not isinstance(address, str):
        return None
    m = _ADDR_PORT.match(address.strip())
    return ip_or_none(m.group("ip")) if m else None


def _classify(req: dict[str, Any], error: str | None, root: bool) -> tuple[KeyOp, KeyRef | None, dict[str, Any]] | None:
    path = req.get("path") if isinstance(req.get("path"), str) else ""
    operation = req.get("operation") if isinstance(req.get("operation"), str) else ""
    mount_type = req.get("mount_type")
    mount = (req.get("mount_point") or "").strip("/") if isinstance(req.get("mount_point"), str) else ""
    if not mount and mount_type == "transit" and "/" in path:
        mount = path.split("/", 1)[0]
    details: dict[str, Any] = {"vault_path": path, "vault_operation": operation}
    if mount_type == "transit" and mount and path.startswith(mount + "/"):
        rest = path[len(mount) + 1 :]
        for pattern, ops in TRANSIT_PATHS:
            m = pattern.match(rest)
            if m and operation in ops:
                name = m.groupdict().get("key")
                try:
                    key = KeyRef.vault(mount, name) if name else None
                except KeyRefError:
                    key = None
                return ops[operation], key, details
        return KeyOp.OTHER, None, details
    if mount_type == "kv" and operation in KV_OPS:
        details["secret_path"] = path
        return KV_OPS[operation], None, details
    if path.startswith(("sys/audit/", "sys/audit-hash/")) or path == "sys/audit":
        return (KeyOp.LIST if operation in ("read", "list") else KeyOp.AUDIT_CONFIG), None, details
    if path.startswith(("sys/policy/", "sys/policies/")):
        return (KeyOp.GET_POLICY if operation in ("read", "list") else KeyOp.POLICY_CHANGE), None, details
    if path.startswith("auth/token/create"):
        return KeyOp.TOKEN_CREATE, None, details
    control = next(
        (
            name
            for prefix, name in SYS_KEY_CONTROL
            if path == prefix or (prefix.endswith("/") and path.startswith(prefix))
        ),
        None,
    )
    if control is not None and operation not in ("read", "list"):
        details["vault_control"] = control
        return KeyOp.CONFIG_CHANGE, None, details
    if root or (error and "permission denied" in error):
        return KeyOp.OTHER, None, details
    return None


def _event(entry: dict[str, Any], record: RawRecord, *, answered: bool) -> KeyEvent | None:
    req = entry["request"]
    auth = entry.get("auth") if isinstance(entry.get("auth"), dict) else {}
    policies = auth.get("policies") if isinstance(auth.get("policies"), list) else []
    root = "root" in policies
    error = entry.get("error") if isinstance(entry.get("error"), str) and entry.get("error") else None
    classified = _classify(req, error, root)
    if classified is None:
        return None
    op, key, details = classified
    resp = entry.get("response") if isinstance(entry.get("response"), dict) else {}
    data = resp.get("data") if isinstance(resp.get("data"), dict) else {}
    version = data.get("key_version", data.get("latest_version"))
    if root:
        details["root_token"] = True
    results = auth.get("policy_results")
    if isinstance(results, dict) and results.get("allowed") is False:
        details["policy_allowed"] = False
    if isinstance(req.get("data"), dict):
        for name in (
            "deletion_allowed",
            "exportable",
            "allow_plaintext_backup",
            "auto_rotate_period",
            "min_decryption_version",
            "min_encryption_version",
            "min_available_version",
            "type",
        ):
            if name in req["data"]:
                details[name] = json_safe(req["data"][name])
    ns = req.get("namespace")
    namespace = ns.get("id") if isinstance(ns, dict) and isinstance(ns.get("id"), str) else None
    rid = req.get("id") if isinstance(req.get("id"), str) else None
    error_code = None
    if not answered:
        error_code = NO_RESPONSE
    elif error:
        error_code = "permission denied" if "permission denied" in error else "error"
    entity = auth.get("entity_id") if isinstance(auth.get("entity_id"), str) and auth.get("entity_id") else None
    name = auth.get("display_name") if isinstance(auth.get("display_name"), str) else None
    identity = [rid, req.get("path"), req.get("operation"), entry["type"]]
    uid = record_uid(SOURCE, record, rid, entry, identity=identity if rid else None)
    headers = req.get("headers") if isinstance(req.get("headers"), dict) else {}
    agent = headers.get("user-agent")
    return KeyEvent(
        uid=uid,
        time=_time(entry, record),
        source=SOURCE,
        provider=Provider.VAULT,
        op=op,
        operation=f"{req.get('operation', '')} {req.get('path', '')}".strip(),
        success=answered and error is None,
        error_code=error_code,
        error_message=error.strip() if error else None,
        key=key,
        key_version=str(version) if isinstance(version, int) and not isinstance(version, bool) else None,
        actor=Actor(
            principal=entity or name,
            principal_type=auth.get("token_type") if isinstance(auth.get("token_type"), str) else None,
            name=name,
            account=namespace,
        ),
        src_ip=_ip(req.get("remote_address")),
        user_agent=agent[0] if isinstance(agent, list) and agent and isinstance(agent[0], str) else None,
        account=namespace,
        service=req.get("mount_type") if isinstance(req.get("mount_type"), str) else None,
        provider_event_id=rid,
        request_id=rid,
        details=details,
        raw=record.text,
        origin=record.origin,
    )


def _kmip_value(node: Any, tag: str) -> Any:
    """Depth-first search of a KMIP TTLV-as-JSON tree for the first node with ``tag``."""
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            if cur.get("tag") == tag:
                return cur.get("value")
            stack.extend(reversed([v for v in cur.values() if isinstance(v, (dict, list))]))
        elif isinstance(cur, list):
            stack.extend(reversed(cur))
    return None


def _hex(value: Any) -> int | None:
    try:
        return int(value, 16) if isinstance(value, str) else None
    except ValueError:
        return None


def _kmip(entry: dict[str, Any], record: RawRecord) -> KeyEvent:
    req = entry["request"]
    resp = entry.get("response") if isinstance(entry.get("response"), dict) else {}
    code = _hex(_kmip_value(resp, "Operation")) or _hex(_kmip_value(req, "Operation"))
    status = _hex(_kmip_value(resp, "ResultStatus"))  # 0 success, 1 failure, 2 pending, 3 undone
    reason = _hex(_kmip_value(resp, "ResultReason"))
    unique = _kmip_value(resp, "UniqueIdentifier") or _kmip_value(req, "UniqueIdentifier")
    key = None
    if isinstance(unique, str) and unique and "/" not in unique:
        key = KeyRef.vault("kmip", unique)
    ns = req.get("namespace")
    namespace = ns.get("id") if isinstance(ns, dict) and isinstance(ns.get("id"), str) else None
    details: dict[str, Any] = {"kmip_operation": code, "kmip_result_status": status}
    if reason is not None:
        details["kmip_result_reason"] = reason
    serial = req.get("client_certificate_serial_number")
    uid = record_uid(SOURCE, record, None, entry)
    return KeyEvent(
        uid=uid,
        time=_time(entry, record),
        source=SOURCE,
        provider=Provider.VAULT,
        op=KMIP_OPS.get(code, KeyOp.OTHER) if code is not None else KeyOp.OTHER,
        operation=f"kmip {KMIP_NAMES.get(code, hex(code) if code is not None else 'unknown')}",
        success=status == 0,
        error_code=None if status == 0 else ("pending" if status == 2 else f"kmip result reason {reason}"),
        key=key,
        actor=Actor(
            principal=f"kmip-client-cert:{serial}" if isinstance(serial, str) else None,
            principal_type="kmip-client",
            account=namespace,
        ),
        src_ip=_ip(req.get("remote_address")),
        account=namespace,
        service="kmip",
        details=details,
        raw=record.text,
        origin=record.origin,
    )
