"""HSM health and capacity as coverage events: is each token there, can kmo log in, how full is it.

A health check never risks locking a token: when the token reports its user PIN on the final try
(or locked), it does not attempt a login at all and reports the token failing instead.

python-pkcs11 exposes only part of CK_TOKEN_INFO, so the counters that matter for capacity
(sessions open and allowed, free and total public/private memory) and the PIN-state flags are read
with ``C_GetTokenInfo`` through ctypes from the same, already initialised module. Values a token
does not report (``CK_UNAVAILABLE_INFORMATION``) become null, "no limit" (``CK_EFFECTIVELY_INFINITE``)
becomes null for the maximum. The result is a heartbeat on the coverage topic (source ``hsm``), so
the warehouse's ``source_health`` answers "which HSMs did we hear from, and how were they".
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import socket
from datetime import UTC, datetime
from typing import Any

import orjson

from actions.backends.base import BackendError
from actions.backends.pkcs11_hsm import Pkcs11Hsm, library
from ingest.heartbeat import SCHEMA

UNAVAILABLE = ctypes.c_ulong(-1).value
_FLAGS = {
    0x1: "rng",
    0x2: "write_protected",
    0x4: "login_required",
    0x8: "user_pin_initialized",
    0x400: "token_initialized",
    0x10000: "user_pin_count_low",
    0x20000: "user_pin_final_try",
    0x40000: "user_pin_locked",
    0x80000: "user_pin_to_be_changed",
    0x100000: "so_pin_count_low",
    0x200000: "so_pin_final_try",
    0x400000: "so_pin_locked",
}
_WARNING_FLAGS = {"user_pin_count_low", "user_pin_final_try", "user_pin_locked", "so_pin_locked", "write_protected"}


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_ubyte), ("minor", ctypes.c_ubyte)]


class _TokenInfo(ctypes.Structure):
    """CK_TOKEN_INFO (PKCS#11 v2.40 §3.2; natural alignment, CK_ULONG = unsigned long on Unix)."""

    _fields_ = [
        ("label", ctypes.c_char * 32),
        ("manufacturerID", ctypes.c_char * 32),
        ("model", ctypes.c_char * 16),
        ("serialNumber", ctypes.c_char * 16),
        ("flags", ctypes.c_ulong),
        ("ulMaxSessionCount", ctypes.c_ulong),
        ("ulSessionCount", ctypes.c_ulong),
        ("ulMaxRwSessionCount", ctypes.c_ulong),
        ("ulRwSessionCount", ctypes.c_ulong),
        ("ulMaxPinLen", ctypes.c_ulong),
        ("ulMinPinLen", ctypes.c_ulong),
        ("ulTotalPublicMemory", ctypes.c_ulong),
        ("ulFreePublicMemory", ctypes.c_ulong),
        ("ulTotalPrivateMemory", ctypes.c_ulong),
        ("ulFreePrivateMemory", ctypes.c_ulong),
        ("hardwareVersion", _Version),
        ("firmwareVersion", _Version),
        ("utcTime", ctypes.c_char * 16),
    ]


def _count(value: int, *, infinite_is_none: bool = False) -> int | None:
    if value == UNAVAILABLE or (infinite_is_none and value == 0):
        return None
    return value


def token_info(module: str, slot_id: int) -> dict[str, Any]:
    """C_GetTokenInfo for one slot, as a plain dict (the module must already be initialised)."""
    library = ctypes.CDLL(module)
    info = _TokenInfo()
    rv = library.C_GetTokenInfo(ctypes.c_ulong(slot_id), ctypes.byref(info))
    if rv != 0:
        raise BackendError("hsm", "health", None, f"C_GetTokenInfo returned 0x{rv:x}")
    return {
        "label": info.label.decode(errors="replace").strip(),
        "manufacturer": info.manufacturerID.decode(errors="replace").strip(),
        "model": info.model.decode(errors="replace").strip(),
        "serial": info.serialNumber.decode(errors="replace").strip(),
        "firmware": f"{info.firmwareVersion.major}.{info.firmwareVersion.minor}",
        "hardware": f"{info.hardwareVersion.major}.{info.hardwareVersion.minor}",
        "flags": sorted(name for bit, name in _FLAGS.items() if info.flags & bit),
        "sessions": _count(info.ulSessionCount),
        "maxSessions": _count(info.ulMaxSessionCount, infinite_is_none=True),
        "rwSessions": _count(info.ulRwSessionCount),
        "maxRwSessions": _count(info.ulMaxRwSessionCount, infinite_is_none=True),
        "freePublicMemory": _count(info.ulFreePublicMemory),
        "totalPublicMemory": _count(info.ulTotalPublicMemory),
        "freePrivateMemory": _count(info.ulFreePrivateMemory),
        "totalPrivateMemory": _count(info.ulTotalPrivateMemory),
    }


def _problems(info: dict[str, Any]) -> list[str]:
    out = [f"flag {f}" for f in info["flags"] if f in _WARNING_FLAGS]
    for kind in ("Public", "Private"):
        free, total = info[f"free{kind}Memory"], info[f"total{kind}Memory"]
        if free is not None and total and free < total / 10:
            out.append(f"{kind.lower()} memory {free}/{total} free")
    if info["sessions"] is not None and info["maxSessions"] and info["sessions"] >= 0.9 * info["maxSessions"]:
        out.append(f"sessions {info['sessions']}/{info['maxSessions']}")
    return out


def health(hsm: Pkcs11Hsm, *, fips_cert: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """One heartbeat for ``hsm``'s token: ok, degraded (a PIN or capacity warning) or failing (no
    token, no login). Never includes the PIN."""
    now = now or datetime.now(UTC)
    detail: dict[str, Any] = {"module": hsm.module, "token": hsm.token_label, "fipsCertificate": fips_cert}
    try:
        token = library(hsm.module).get_token(token_label=hsm.token_label)
        detail |= token_info(hsm.module, token.slot.slot_id)
        if {"user_pin_final_try", "user_pin_locked"} & set(detail["flags"]):
            # one more wrong PIN would lock the token (or it is locked): a health check must not be the cause
            raise BackendError("hsm", "health", None, "not logging in: the user PIN is on its final try or locked")
        keys = hsm.list_keys()  # proves the login, and counts what kmo manages there
        detail["kmoKeys"] = len(keys)
        detail["kmoKeyObjects"] = sum(len(k.versions) for k in keys)
        problems = _problems(detail)
        status = "degraded" if problems else "ok"
    except Exception as exc:  # a missing module, token or login: the heartbeat says so
        problems = [f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"[:300]]
        status = "failing"
    detail["problems"] = problems
    collector = f"{socket.gethostname()}:{os.getpid()}"
    doc = {
        "schema": SCHEMA,
        "time": now.isoformat(),
        "source": "hsm",
        "collector": f"kmo-hsm-health@{collector}",
        "locations": [f"pkcs11:token={hsm.token_label}"],
        "status": status,
        "detail": detail,
    }
    doc["uid"] = hashlib.sha256(orjson.dumps([doc["collector"], doc["time"], hsm.token_label])).hexdigest()[:32]
    return doc
