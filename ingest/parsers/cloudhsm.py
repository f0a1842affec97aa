"""AWS CloudHSM audit log (text, as delivered to CloudWatch Logs) -> KeyEvent.

One event is a block of ``Key : Value`` lines (spacing varies: ``Key: v``, ``Key : v``, tabs):

    Time: 12/19/17 21:01:17.140812, usecs:1513717277140812
    Sequence No : 0x1
    Reboot counter : 0xe8
    Command Type(hex) : CN_MGMT_CMD (0x0)
    Opcode : CN_GEN_PSWD_ENC_KEY (0x1d)
    Session Handle : 0x1004001
    Response : 0:HSM Return: SUCCESS
    Log type : MINIMAL_LOG_ENTRY (0)

Facts (AWS CloudHSM user guide, audit log reference): the log records *management* commands
with key **handles**, not key usage, so silence here never means a key is unused; sequence
numbers count up per HSM and restart when the reboot counter changes, so a gap means lost or
removed records (:func:`sequence` / :func:`gap_event`). CloudWatch JSON wrappings (subscription
``logEvents`` or ``filter-log-events`` output, with the block in ``message`` and the HSM id as the
log stream) are read too.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from ingest.parsers.base import ParseError, RawRecord, record_uid
from ingest.schema import Actor, KeyEvent, KeyOp, KeyRef, Provider, event_uid

SOURCE = "aws.cloudhsm"
DEFAULT_HSM = "cloudhsm"
_LINE = re.compile(r"^(?P<key>[A-Za-z][A-Za-z /()]*?)[ \t]*:[ \t]*(?P<value>.*)$")
_NAMED = re.compile(r"^(?P<name>[A-Z0-9_]+)\s*\((?P<code>0x[0-9a-fA-F]+|\d+)\)$")
_RESPONSE = re.compile(r"^(?P<code>\d+):\s*HSM (?P<kind>Return|Error):\s*(?P<text>.*)$")
_TIME = re.compile(r"^(?P<date>\d\d/\d\d/\d\d) (?P<clock>\d\d:\d\d:\d\d(?:\.\d+)?)(?:,\s*usecs:\s*(?P<usecs>\d+))?")

OPS: dict[str, KeyOp] = {
    "CN_GENERATE_KEY": KeyOp.CREATE,
    "CN_GENERATE_KEY_PAIR": KeyOp.CREATE,
    "CN_CREATE_OBJECT": KeyOp.IMPORT,
    "CN_DESTROY_OBJECT": KeyOp.DESTROY,
    "CN_TOMBSTONE_OBJECT": KeyOp.DESTROY,
    "CN_WRAP_KEY": KeyOp.WRAP,
    "CN_NIST_AES_WRAP": KeyOp.WRAP,
    "CN_UNWRAP_KEY": KeyOp.UNWRAP,
    "CN_EXTRACT_MASKED_OBJECT_USER": KeyOp.EXPORT,
    "CN_INSERT_MASKED_OBJECT_USER": KeyOp.IMPORT,
    "CN_SHARE_OBJECT": KeyOp.GRANT,
    "CN_MODIFY_OBJECT": KeyOp.CONFIG_CHANGE,
    "CN_LOGIN": KeyOp.LOGIN,
    "CN_LOGOUT": KeyOp.OTHER,
    "CN_CREATE_USER": KeyOp.USER_CHANGE,
    "CN_CREATE_CO": KeyOp.USER_CHANGE,
    "CN_CREATE_APPLIANCE_USER": KeyOp.USER_CHANGE,
    "CN_DELETE_USER": KeyOp.USER_CHANGE,
    "CN_CHANGE_PSWD": KeyOp.USER_CHANGE,
    "CN_CHANGE_USR_PSWD": KeyOp.USER_CHANGE,
    "CN_INIT_TOKEN": KeyOp.CONFIG_CHANGE,
    "CN_INIT_DONE": KeyOp.CONFIG_CHANGE,
    "CN_GEN_PSWD_ENC_KEY": KeyOp.CONFIG_CHANGE,
    "CN_SET_M_VALUE": KeyOp.POLICY_CHANGE,  # quorum (M of N) change
    "CN_APPROVE_TOKEN": KeyOp.POLICY_CHANGE,
    "CN_CLOSE_PARTITION": KeyOp.CONFIG_CHANGE,
    "CN_ZEROIZE": KeyOp.DESTROY,
}


def _fields(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m:
            out.setdefault(m.group("key").strip().lower(), m.group("value").strip())
    return out


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value, 16) if value.lower().startswith("0x") else int(value)
    except ValueError:
        return None


def parse(record: RawRecord) -> KeyEvent | None:
    """Normalise one audit block (text, or a CloudWatch event holding it in ``message``).

    Raises:
        ParseError: when the block lacks Time, Opcode or Response, or they are malformed.
    """
    text, token = record.text, DEFAULT_HSM
    if isinstance(record.obj, dict):
        message = record.obj.get("message")
        if not isinstance(message, str):
            raise ParseError(SOURCE, record.origin, "JSON record without a CloudHSM audit message")
        text = message
        stream = record.obj.get("logStreamName", record.obj.get("logStream"))
        token = stream if isinstance(stream, str) and stream else token
    elif record.obj is not None:
        raise ParseError(SOURCE, record.origin, "not a CloudHSM audit record")
    fields = _fields(text)
    missing = [k for k in ("time", "opcode", "response") if k not in fields]
    if missing:
        raise ParseError(SOURCE, record.origin, f"not a CloudHSM audit block (missing {', '.join(missing)})")
    time = _time(fields["time"], record)
    opcode = _NAMED.match(fields["opcode"])
    response = _RESPONSE.match(fields["response"])
    if not opcode or not response:
        raise ParseError(SOURCE, record.origin, "malformed Opcode or Response line")
    name = opcode.group("name")
    code = int(response.group("code"))
    seq = _int(fields.get("sequence no"))
    reboot = _int(fields.get("reboot counter"))
    handle = _int(fields.get("priv/secret key handle"))
    public = _int(fields.get("public key handle"))
    key = KeyRef.hsm_handle(token, handle) if handle else None
    related = (KeyRef.hsm_handle(token, public),) if public else ()
    details: dict[str, Any] = {"sequence": seq, "reboot_counter": reboot, "opcode": name}
    for field, out in (
        ("session handle", "session_handle"),
        ("log type", "log_type"),
        ("user type", "user_type"),
        ("command type(hex)", "command_type"),
    ):
        if field in fields:
            details[out] = fields[field]
    user = fields.get("user name") or None
    actor = user
    if user and name in ("CN_CREATE_USER", "CN_CREATE_CO", "CN_CREATE_APPLIANCE_USER", "CN_DELETE_USER"):
        # The user named is the one created or deleted; who did it is the session's officer,
        # whom this record does not name.
        details["target_user"] = user
        actor = None
    uid = record_uid(SOURCE, record, f"{token}/{reboot}/{seq}" if seq is not None else None, text)
    return KeyEvent(
        uid=uid,
        time=time,
        source=SOURCE,
        provider=Provider.HSM,
        op=OPS.get(name, KeyOp.OTHER),
        operation=name,
        success=code == 0,
        error_code=None if code == 0 else str(code),
        error_message=None if code == 0 else response.group("text")[:200],
        key=key,
        related_keys=related,
        actor=Actor(
            principal=actor, principal_type=fields.get("user type") if actor else None, name=actor, account=token
        ),
        account=token,
        service="cloudhsm",
        provider_event_id=f"{token}/{reboot}/{seq}" if seq is not None else None,
        details=details,
        raw=record.text,
        origin=record.origin,
    )


def _time(value: str, record: RawRecord) -> datetime:
    m = _TIME.match(value)
    if not m:
        raise ParseError(SOURCE, record.origin, f"malformed Time line: {value[:60]!r}")
    if m.group("usecs"):
        try:
            return datetime.fromtimestamp(int(m.group("usecs")) / 1e6, tz=UTC)
        except (OverflowError, OSError, ValueError):
            pass  # fall back to the printed time
    try:
        return datetime.strptime(f"{m.group('date')} {m.group('clock')}", "%m/%d/%y %H:%M:%S.%f").replace(tzinfo=UTC)
    except ValueError:
        try:
            return datetime.strptime(f"{m.group('date')} {m.group('clock')}", "%m/%d/%y %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            raise ParseError(SOURCE, record.origin, f"malformed Time line: {value[:60]!r}") from None


def sequence(event: KeyEvent) -> tuple[str, int, int] | None:
    """(HSM, reboot counter, sequence number) of an event, for gap detection."""
    seq, reboot = event.details.get("sequence"), event.details.get("reboot_counter")
    if isinstance(seq, int) and isinstance(reboot, int):
        return (event.account or DEFAULT_HSM, reboot, seq)
    return None


def gap_event(after: KeyEvent, expected: int, found: int) -> KeyEvent:
    """An event saying records ``expected``..``found - 1`` are missing before ``after`` (or, when
    ``found < expected``, that the sequence went backwards without a reboot)."""
    hsm, reboot, _ = sequence(after) or (DEFAULT_HSM, -1, -1)
    kind = "missing" if found > expected else "out_of_order"
    ident = {"hsm": hsm, "reboot": reboot, "expected": expected, "found": found}
    return KeyEvent(
        uid=event_uid(SOURCE, f"gap/{hsm}/{reboot}/{expected}-{found}", ident),
        time=after.time,
        source=SOURCE,
        provider=Provider.HSM,
        op=KeyOp.AUDIT_GAP,
        operation="AUDIT_SEQUENCE_GAP",
        success=False,
        error_code=kind,
        error_message=(
            f"{found - expected} audit record(s) missing before sequence {found:#x} (reboot {reboot:#x})"
            if found > expected
            else f"sequence went from {expected - 1:#x} back to {found:#x} without a reboot"
        ),
        actor=Actor(account=hsm),
        account=hsm,
        service="cloudhsm",
        details={
            "hsm": hsm,
            "reboot_counter": reboot,
            "expected_sequence": expected,
            "found_sequence": found,
            "after_event": after.uid,
        },
        raw="",
        origin=after.origin,
    )
