"""The rest of the demo estate: Vault/OpenBao, GCP Cloud KMS, Azure Key Vault, AWS CloudHSM and
Thales Luna, each written in its native log format, with benign diurnal traffic and seeded incidents.

Each generator returns the files to write and the incidents it seeded; incident event uids are
computed with the same parsers the collectors use, so ground truth and pipeline cannot drift apart.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ingest.parsers import PARSERS, RawRecord
from ingest.parsers import cloudhsm as cloudhsm_parser
from kmo.demo.estate import Estate, Incident


@dataclass
class SourceFiles:
    source: str  # parser source name
    directory: str  # under the demo's output directory
    files: dict[str, bytes] = field(default_factory=dict)
    incidents: list[Incident] = field(default_factory=list)
    records: int = 0


def _uid(source: str, text: str) -> str:
    event = PARSERS[source](RawRecord(text, json.loads(text) if text.lstrip()[:1] in "{[" else None, "demo"))
    assert event is not None, f"demo record is not an event for {source}: {text[:80]}"
    return event.uid


def _gap_uid(source: str, text: str, expected: int) -> str:
    """The uid of the sequence-gap event the collector derives before ``text`` (3 records skipped)."""
    event = PARSERS[source](RawRecord(text, None, "demo"))
    assert event is not None
    return cloudhsm_parser.gap_event(event, expected, event.details["sequence"]).uid


def _hours(estate: Estate) -> list[datetime]:
    n = int((estate.end - estate.start).total_seconds() // 3600)
    return [estate.start + timedelta(hours=h) for h in range(n)]


def _incident(estate: Estate, kind: str, text: str, keys: list[str], who: str, when: list[datetime], uids: list[str]):
    return Incident(
        id=f"INC-{len(estate.incidents) + 1:02d}",
        kind=kind,
        description=text,
        key_arns=keys,
        principal=who,
        start=min(when),
        end=max(when),
        event_uids=uids,
    )


# -- Vault / OpenBao ------------------------------------------------------------------------------
def vault(estate: Estate, rng: random.Random) -> SourceFiles:
    out = SourceFiles("vault.audit", "vault")
    keys = ["payments", "orders", "sessions", "webhooks"]
    apps = {k: (f"approle-{k}-svc", str(uuid.UUID(int=rng.getrandbits(128), version=4))) for k in keys}
    lines: list[str] = []

    def pair(
        when: datetime,
        path: str,
        op: str,
        who: tuple[str, str | None],
        policies: list[str],
        ip: str,
        resp: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> str:
        rid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        auth = {
            "client_token": f"hmac-sha256:{rng.getrandbits(128):032x}",
            "display_name": who[0],
            "policies": policies,
            "token_type": "service",
        }
        if who[1]:
            auth["entity_id"] = who[1]
        req = {
            "id": rid,
            "operation": op,
            "mount_point": "transit/",
            "mount_type": "transit",
            "namespace": {"id": "root"},
            "path": path,
            "remote_address": ip,
        }
        if not path.startswith("transit/"):
            req.pop("mount_point")
            req.pop("mount_type")
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        request = {"time": stamp, "type": "request", "auth": auth, "request": req}
        response = {"time": stamp, "type": "response", "auth": auth, "request": req, "response": {"data": resp or {}}}
        if error:
            request["error"] = response["error"] = error
        lines.append(json.dumps(request))
        text = json.dumps(response)
        lines.append(text)
        return text

    for hour in _hours(estate):
        factor = Estate._diurnal(hour)
        for k in keys:
            for _ in range(int(rng.expovariate(1 / (3.0 * factor)))):
                when = hour + timedelta(seconds=rng.randrange(3600))
                op = rng.choice(["encrypt", "decrypt", "decrypt"])
                pair(
                    when,
                    f"transit/{op}/{k}",
                    "update",
                    apps[k],
                    ["default", k],
                    f"10.20.{keys.index(k)}.{rng.randrange(2, 250)}",
                    {"key_version": 3} if op == "encrypt" else None,
                )
    day = estate.start + timedelta(days=(estate.end - estate.start).days // 2)
    t = day.replace(hour=2, minute=41)
    texts = [
        pair(t, "transit/keys/payments/config", "update", ("root", None), ["root"], "203.0.113.66"),
        pair(
            t + timedelta(seconds=20),
            "transit/export/encryption-key/payments",
            "read",
            ("root", None),
            ["root"],
            "203.0.113.66",
        ),
    ]
    out.incidents.append(
        _incident(
            estate,
            "vault_root_token_key_export",
            "root token made the payments transit key exportable and exported it at 02:41",
            ["vault:transit/keys/payments"],
            "root",
            [t],
            [_uid(out.source, x) for x in texts],
        )
    )
    estate.incidents.append(out.incidents[-1])
    t2 = t + timedelta(minutes=5)
    text = pair(t2, "sys/audit/to-file", "delete", ("root", None), ["root"], "203.0.113.66")
    out.incidents.append(
        _incident(
            estate,
            "vault_audit_device_disabled",
            "the file audit device was disabled",
            [],
            "root",
            [t2],
            [_uid(out.source, text)],
        )
    )
    estate.incidents.append(out.incidents[-1])
    lines.sort(key=lambda line: json.loads(line)["time"])
    out.files["audit.log"] = ("\n".join(lines) + "\n").encode()
    out.records = len(lines)
    return out


# -- GCP Cloud KMS --------------------------------------------------------------------------------
def gcp(estate: Estate, rng: random.Random) -> SourceFiles:
    out = SourceFiles("gcp.audit", "gcp")
    project = "shop-prod"
    keys = [
        f"projects/{project}/locations/europe-west1/keyRings/payments/cryptoKeys/{k}"
        for k in ("card-data", "tokens", "exports")
    ]
    sas = [f"{n}@{project}.iam.gserviceaccount.com" for n in ("checkout", "billing", "reports")]
    lines: list[str] = []

    def entry(
        when: datetime,
        method: str,
        resource: str,
        who: str,
        log: str = "data_access",
        request: dict | None = None,
        code: int = 0,
        ip: str = "10.132.0.7",
    ) -> str:
        doc = {
            "logName": f"projects/{project}/logs/cloudaudit.googleapis.com%2F{log}",
            "resource": {"type": "cloudkms_cryptokey", "labels": {"project_id": project}},
            "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "insertId": f"{rng.getrandbits(64):016x}",
            "protoPayload": {
                "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                "status": {"code": code} if code else {},
                "authenticationInfo": {"principalEmail": who},
                "requestMetadata": {"callerIp": ip, "callerSuppliedUserAgent": "grpc-java/1.62"},
                "serviceName": "cloudkms.googleapis.com",
                "methodName": method,
                "resourceName": resource,
                "request": request or {},
            },
        }
        text = json.dumps(doc)
        lines.append(text)
        return text

    for hour in _hours(estate):
        factor = Estate._diurnal(hour)
        for i, key in enumerate(keys[:2]):
            for _ in range(int(rng.expovariate(1 / (4.0 * factor)))):
                entry(hour + timedelta(seconds=rng.randrange(3600)), rng.choice(["Encrypt", "Decrypt"]), key, sas[i])
    t = (estate.start + timedelta(days=(estate.end - estate.start).days // 2 + 1)).replace(hour=22, minute=3)
    texts = [
        entry(
            t,
            "DestroyCryptoKeyVersion",
            f"{keys[0]}/cryptoKeyVersions/1",
            "eve@example.com",
            "activity",
            ip="198.51.100.9",
        )
    ]
    off = {
        "logName": f"projects/{project}/logs/cloudaudit.googleapis.com%2Factivity",
        "resource": {"type": "project", "labels": {"project_id": project}},
        "timestamp": (t + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "insertId": "auditcfg0001",
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "authenticationInfo": {"principalEmail": "eve@example.com"},
            "serviceName": "cloudresourcemanager.googleapis.com",
            "methodName": "SetIamPolicy",
            "resourceName": f"projects/{project}",
            "request": {"policy": {"auditConfigs": []}, "updateMask": "auditConfigs"},
        },
    }
    lines.append(json.dumps(off))
    texts.append(lines[-1])
    out.incidents.append(
        _incident(
            estate,
            "gcp_version_destroyed_and_logs_off",
            "a person scheduled card-data version 1 for destruction, then removed Data Access logging",
            [keys[0]],
            "eve@example.com",
            [t],
            [_uid(out.source, x) for x in texts],
        )
    )
    estate.incidents.append(out.incidents[-1])
    lines.sort(key=lambda line: json.loads(line)["timestamp"])
    out.files["kms.ndjson"] = ("\n".join(lines) + "\n").encode()
    out.records = len(lines)
    return out


# -- Azure Key Vault ------------------------------------------------------------------------------
def azure(estate: Estate, rng: random.Random) -> SourceFiles:
    out = SourceFiles("azure.keyvault", "azure")
    sub = "0000aaaa-1111-2222-3333-444455556666"
    vault = "payments-kv"
    rid = f"/SUBSCRIPTIONS/{sub.upper()}/RESOURCEGROUPS/PAYMENTS-RG/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/{vault.upper()}"
    app = {
        "http://schemas.microsoft.com/identity/claims/objectidentifier": str(uuid.UUID(int=rng.getrandbits(128))),
        "appid": str(uuid.UUID(int=rng.getrandbits(128))),
    }
    by_hour: dict[str, list[str]] = {}

    def record(when: datetime, op: str, obj: str, claims: dict, ip: str = "10.4.0.12", status: int = 200) -> str:
        doc = {
            "time": when.strftime("%Y-%m-%dT%H:%M:%S.%f0Z"),
            "resourceId": rid,
            "operationName": op,
            "operationVersion": "7.5",
            "category": "AuditEvent",
            "resultType": "Success",
            "resultSignature": "OK" if status < 400 else "Forbidden",
            "durationMs": str(rng.randrange(3, 40)),
            "callerIpAddress": ip,
            "correlationId": str(uuid.UUID(int=rng.getrandbits(128))),
            "identity": {"claim": claims},
            "properties": {
                "id": f"https://{vault}.vault.azure.net/{obj}",
                "httpStatusCode": status,
                "clientInfo": "azsdk-python-keyvault-keys/4.11",
            },
            "location": "westeurope",
        }
        text = json.dumps(doc)
        by_hour.setdefault(when.strftime("y=%Y/m=%m/d=%d/h=%H"), []).append(text)
        return text

    for hour in _hours(estate):
        for _ in range(int(rng.expovariate(1 / (3.0 * Estate._diurnal(hour))))):
            record(
                hour + timedelta(seconds=rng.randrange(3600)),
                rng.choice(["KeyWrap", "KeyUnwrap", "KeyUnwrap"]),
                "keys/db-tde/2b8f9e00",
                app,
            )
    t = (estate.start + timedelta(days=(estate.end - estate.start).days // 2 + 2)).replace(hour=1, minute=15)
    mallory = {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": "mallory@contoso.com"}
    texts = [
        record(
            t + timedelta(seconds=3 * i), "SecretGet", f"secrets/app-secret-{i:02d}/0a1b", mallory, ip="198.51.100.23"
        )
        for i in range(30)
    ]
    texts.append(record(t + timedelta(minutes=3), "KeyDelete", "keys/db-tde", mallory, ip="198.51.100.23"))
    texts.append(record(t + timedelta(minutes=4), "KeyPurge", "deletedkeys/db-tde", mallory, ip="198.51.100.23"))
    out.incidents.append(
        _incident(
            estate,
            "azure_mass_secret_read_and_purge",
            "30 secrets read in 90 seconds, then the TDE key deleted and purged, at 01:15",
            [f"https://{vault}.vault.azure.net/keys/db-tde"],
            "mallory@contoso.com",
            [t],
            [_uid(out.source, x) for x in texts],
        )
    )
    estate.incidents.append(out.incidents[-1])
    for path, recs in by_hour.items():
        recs.sort(key=lambda line: json.loads(line)["time"])
        out.files[f"resourceId={rid}/{path}/m=00/PT1H.json"] = ("\n".join(recs) + "\n").encode()
        out.records += len(recs)
    return out


# -- AWS CloudHSM ---------------------------------------------------------------------------------
def cloudhsm(estate: Estate, rng: random.Random) -> SourceFiles:
    out = SourceFiles("aws.cloudhsm", "cloudhsm")
    blocks: list[str] = []
    seq = [0]

    def block(when: datetime, opcode: str, code: int, extra: list[str], skip: int = 0) -> str:
        seq[0] += skip
        usecs = int(when.timestamp() * 1e6)
        lines = [
            f"Time: {when.strftime('%m/%d/%y %H:%M:%S.%f')}, usecs:{usecs}",
            f"Sequence No : {seq[0]:#x}",
            "Reboot counter : 0x2a",
            "Command Type(hex) : CN_MGMT_CMD (0x0)",
            f"Opcode : {opcode} ({code:#x})",
            "Session Handle : 0x1c008004",
            "Response : 0:HSM Return: SUCCESS",
            *extra,
        ]
        seq[0] += 1
        text = "\n".join(lines)
        blocks.append(text)
        return text

    for day in range((estate.end - estate.start).days):
        when = estate.start + timedelta(days=day, hours=9, minutes=rng.randrange(30))
        block(
            when,
            "CN_LOGIN",
            0xD,
            ["Log type : MGMT_USER_DETAILS_LOG (2)", "User Name : crypto_user", "User Type : CN_CRYPTO_USER (1)"],
        )
        block(
            when + timedelta(seconds=2),
            "CN_GENERATE_KEY",
            0x17,
            [
                "Log type : MGMT_KEY_DETAILS_LOG (1)",
                f"Priv/Secret Key Handle : {524288 + day}",
                "Public Key Handle : 0",
            ],
        )
        block(
            when + timedelta(seconds=9),
            "CN_LOGOUT",
            0xE,
            ["Log type : MGMT_USER_DETAILS_LOG (2)", "User Name : crypto_user", "User Type : CN_CRYPTO_USER (1)"],
        )
    t = estate.start + timedelta(days=(estate.end - estate.start).days // 2, hours=3, minutes=7)
    expected = seq[0]
    text = block(
        t,
        "CN_EXTRACT_MASKED_OBJECT_USER",
        0xF0,
        ["Log type : MGMT_KEY_DETAILS_LOG (1)", "Priv/Secret Key Handle : 524290", "Public Key Handle : 0"],
        skip=3,
    )
    out.incidents.append(
        _incident(
            estate,
            "hsm_key_exported_after_log_gap",
            "3 audit records missing, then a masked key export at 03:07",
            ["pkcs11:token=cloudhsm;x-handle=524290"],
            "",
            [t],
            [_gap_uid(out.source, text, expected), _uid(out.source, text)],
        )
    )
    estate.incidents.append(out.incidents[-1])
    out.files["hsm-demo01.log"] = ("\n\n".join(blocks) + "\n").encode()
    out.records = len(blocks)
    return out


# -- Thales Luna ----------------------------------------------------------------------------------
def luna(estate: Estate, rng: random.Random) -> SourceFiles:
    out = SourceFiles("thales.luna", "luna")
    records: list[str] = []
    ouids = [f"1c000000{rng.getrandbits(64):016x}" for _ in range(3)]

    def rec(when: datetime, action: str, client: str, ouid: str | None, status: str = "LUNA_RET_OK") -> str:
        meta: dict[str, str] = {"role": "Crypto User", "clientIP": f"10.30.0.{rng.randrange(2, 50)}"}
        if ouid:
            meta["OUID"] = ouid
        text = json.dumps(
            {
                "time": when.strftime("%Y-%m-%d %H:%M:%S UTC"),
                "source": "thales/cloudhsm/1269045733704",
                "resourceid": "svc-5f2c8a",
                "actorid": client,
                "tenantid": "tenant-42",
                "action": action,
                "status": status,
                "meta": meta,
            }
        )
        records.append(text)
        return text

    for hour in _hours(estate):
        for _ in range(int(rng.expovariate(1 / (2.0 * Estate._diurnal(hour))))):
            rec(
                hour + timedelta(seconds=rng.randrange(3600)),
                rng.choice(["LUNA_SIGN_SINGLEPART", "LUNA_DECRYPT_SINGLEPART"]),
                "client-payments-01",
                rng.choice(ouids[:2]),
            )
    t = (estate.start + timedelta(days=(estate.end - estate.start).days // 3)).replace(hour=4, minute=2)
    texts = [
        rec(t + timedelta(seconds=i), "LUNA_LOGIN", "client-unknown-99", None, "LUNA_RET_PIN_INCORRECT")
        for i in range(6)
    ]
    texts.append(rec(t + timedelta(seconds=30), "LUNA_DESTROY_OBJECT", "client-unknown-99", ouids[2]))
    out.incidents.append(
        _incident(
            estate,
            "luna_failed_logins_then_destroy",
            "6 failed logins then an object destroyed by an unknown client at 04:02",
            [f"pkcs11:token=1269045733704;x-ouid={ouids[2]}"],
            "client-unknown-99",
            [t],
            [_uid(out.source, x) for x in texts],
        )
    )
    estate.incidents.append(out.incidents[-1])
    records.sort(key=lambda r: json.loads(r)["time"])
    out.files["luna-audit-export.json"] = ("[\n" + ",\n".join(records) + "\n]\n").encode()
    out.records = len(records)
    return out


GENERATORS: tuple[Callable[[Estate, random.Random], SourceFiles], ...] = (vault, gcp, azure, cloudhsm, luna)


def generate_all(estate: Estate) -> list[SourceFiles]:
    """Every non-AWS source for ``estate`` (call after ``estate.generate()``), deterministic per seed."""
    return [gen(estate, random.Random(estate.seed * 1000 + i)) for i, gen in enumerate(GENERATORS)]
