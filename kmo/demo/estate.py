"""A synthetic but realistic AWS KMS estate, and weeks of its CloudTrail, deterministic per seed.

What it models, so detections and analytics have something true to find:

* three accounts (prod, staging, security) in two regions; dozens of customer-managed keys of every
  key type and algorithm in the product specification (master, data, signing, tls, api, session);
* service roles (AssumedRole sessions from EC2/Lambda) and people (IAMUser), plus AWS services
  calling on a principal's behalf (``invokedBy``);
* diurnal usage: request rates follow a day curve (busier 08-20 UTC, quieter at night and weekends),
  Poisson counts per hour, a small rate of access-denied errors;
* routine lifecycle: DescribeKey and ListAliases, automatic rotation service events;
* seeded incidents with ground truth (``incidents.json``: kind, key, principal, window and the exact
  uids of the events that make up each one): a night-time decrypt burst by a never-seen principal,
  a key scheduled for deletion and disabled outside any change window, a key policy opened to
  everyone, a grant to an outside account, cross-account use, use of a disabled key, an
  access-denied probe across many keys, and a key nobody uses at all (orphan).
"""

from __future__ import annotations

import json
import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from ingest.schema import event_uid

ACCOUNTS = {"prod": "111111111111", "staging": "222222222222", "security": "333333333333"}
OUTSIDE_ACCOUNT = "999988887777"
REGIONS = ("us-east-1", "eu-west-1")

# key type -> (AWS KeySpec, KeyUsage, spec algorithm, key size, usage operations, mean calls/hour/principal)
KEY_TYPES: dict[str, list[tuple[str, str, str, int, tuple[str, ...], float]]] = {
    "master": [("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "AES-256", 256, ("Encrypt", "Decrypt"), 0.6)],
    "data": [
        (
            "SYMMETRIC_DEFAULT",
            "ENCRYPT_DECRYPT",
            "AES-256",
            256,
            ("GenerateDataKey", "Decrypt", "Decrypt", "Encrypt"),
            5.0,
        )
    ],
    "signing": [
        ("RSA_4096", "SIGN_VERIFY", "RSA-4096", 4096, ("Sign", "Verify"), 1.5),
        ("ECC_NIST_P384", "SIGN_VERIFY", "ECDSA-P384", 384, ("Sign", "Verify"), 1.5),
    ],
    "tls": [
        ("RSA_2048", "SIGN_VERIFY", "RSA-2048", 2048, ("Sign",), 3.0),
        ("ECC_NIST_P256", "SIGN_VERIFY", "ECDSA-P256", 256, ("Sign",), 3.0),
    ],
    "api": [("HMAC_256", "GENERATE_VERIFY_MAC", "AES-256", 256, ("GenerateMac", "VerifyMac", "VerifyMac"), 4.0)],
    "session": [("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "AES-256", 256, ("GenerateDataKey", "Decrypt"), 2.5)],
}
ROTATION_DAYS = {"master": 365, "data": 30, "signing": 365, "tls": 365, "api": 90, "session": 1}
TEAMS = ("payments", "identity", "platform", "analytics", "mobile", "search")
PEOPLE = ("alice", "bob", "carol", "dave", "erin", "frank")
USER_AGENTS = (
    "aws-sdk-java/2.25.60 Linux/6.1 OpenJDK_64-Bit_Server_VM/17.0.11",
    "Boto3/1.34.120 md/Botocore#1.34.120 ua/2.0 os/linux#6.1 lang/python#3.11.9",
    "aws-sdk-go-v2/1.27.0 os/linux lang/go#1.22.3 api/kms#1.32.1",
)
CONSOLE_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4"


@dataclass
class Key:
    key_id: str
    account: str
    region: str
    key_type: str
    key_spec: str
    key_usage: str
    algorithm: str
    key_size: int
    ops: tuple[str, ...]
    rate: float
    owner: str
    alias: str
    created_at: datetime
    users: list[Principal] = field(default_factory=list)
    orphan: bool = False

    @property
    def arn(self) -> str:
        return f"arn:aws:kms:{self.region}:{self.account}:key/{self.key_id}"


@dataclass(frozen=True)
class Principal:
    kind: str  # AssumedRole | IAMUser
    account: str
    name: str  # role name or user name
    session: str = ""
    ip: str = "10.0.0.1"
    user_agent: str = USER_AGENTS[0]

    @property
    def arn(self) -> str:
        if self.kind == "AssumedRole":
            return f"arn:aws:sts::{self.account}:assumed-role/{self.name}/{self.session}"
        return f"arn:aws:iam::{self.account}:user/{self.name}"

    def identity(self, rng: random.Random) -> dict[str, Any]:
        pid = f"AROA{rng.getrandbits(64):016X}"[:21]
        ident: dict[str, Any] = {
            "type": self.kind,
            "principalId": pid,
            "arn": self.arn,
            "accountId": self.account,
        }
        ident["accessKeyId"] = f"ASIA{rng.getrandbits(64):016X}"[:20]
        if self.kind == "AssumedRole":
            ident["principalId"] = f"{pid}:{self.session}"
            ident["sessionContext"] = {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": pid,
                    "arn": f"arn:aws:iam::{self.account}:role/{self.name}",
                    "accountId": self.account,
                    "userName": self.name,
                },
                "attributes": {"creationDate": "2024-01-01T00:00:00Z", "mfaAuthenticated": "false"},
            }
        else:
            ident["userName"] = self.name
        return ident


@dataclass
class Incident:
    id: str
    kind: str
    description: str
    key_arns: list[str]
    principal: str
    start: datetime
    end: datetime
    event_uids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "description": self.description,
            "keys": self.key_arns,
            "principal": self.principal,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "events": len(self.event_uids),
            "event_uids": self.event_uids,
        }


class Estate:
    """The estate and the CloudTrail records it produces. Same seed, same records, byte for byte."""

    def __init__(self, *, seed: int = 7, days: int = 21, end: datetime | None = None, keys_per_account: int = 14):
        self.seed = seed
        self.rng = random.Random(seed)
        self.np = np.random.default_rng(seed)
        self.end = (end or datetime(2026, 11, 30, tzinfo=UTC)).replace(minute=0, second=0, microsecond=0)
        self.start = self.end - timedelta(days=days)
        self.keys: list[Key] = []
        self.incidents: list[Incident] = []
        self.records: list[dict[str, Any]] = []
        self._build_keys(keys_per_account)

    # -- the estate ----------------------------------------------------------------------------
    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _ip(self, private: bool = True) -> str:
        if private:
            return f"10.{self.rng.randrange(0, 40)}.{self.rng.randrange(0, 255)}.{self.rng.randrange(1, 254)}"
        return f"198.51.100.{self.rng.randrange(1, 254)}"

    def _build_keys(self, per_account: int) -> None:
        type_names = list(KEY_TYPES)
        for acct_name, account in ACCOUNTS.items():
            roles = [
                Principal(
                    "AssumedRole",
                    account,
                    f"{team}-{acct_name}-app",
                    f"i-{self.rng.getrandbits(56):014x}",
                    self._ip(),
                    self.rng.choice(USER_AGENTS),
                )
                for team in TEAMS
            ]
            for i in range(per_account):
                key_type = type_names[i % len(type_names)]
                spec, usage, algo, size, ops, rate = self.rng.choice(KEY_TYPES[key_type])
                team = TEAMS[i % len(TEAMS)]
                region = REGIONS[i % len(REGIONS)]
                key = Key(
                    key_id=self._uuid(),
                    account=account,
                    region=region,
                    key_type=key_type,
                    key_spec=spec,
                    key_usage=usage,
                    algorithm=algo,
                    key_size=size,
                    ops=ops,
                    rate=rate * (0.5 + self.rng.random()),
                    owner=f"team-{team}",
                    alias=f"alias/{acct_name}/{team}/{key_type}-{i:02d}",
                    created_at=self.start - timedelta(days=self.rng.randrange(20, 700)),
                )
                owners = [r for r in roles if r.name.startswith(team)]
                key.users = owners + self.rng.sample(roles, k=self.rng.randrange(0, 3))
                self.keys.append(key)
        # One key nobody uses: the orphan incident (its silence is the signal).
        orphan = next(k for k in self.keys if k.account == ACCOUNTS["staging"] and k.key_type == "data")
        orphan.orphan = True

    def inventory(self) -> list[dict[str, Any]]:
        """The estate in the specification's keyInfo shape, plus keyManagementSystem/owner/lastRotatedAt."""
        out = []
        for k in self.keys:
            period = ROTATION_DAYS[k.key_type]
            rotated = max(k.created_at, self.end - timedelta(days=period // 2))  # within its cryptoperiod
            out.append(
                {
                    "keyId": k.arn,
                    "keyType": k.key_type,
                    "algorithm": k.algorithm,
                    "keySize": k.key_size,
                    "createdAt": k.created_at.isoformat(),
                    "expiresAt": None,
                    "version": 1,
                    "status": "active",
                    "keyManagementSystem": "aws-kms",
                    "owner": k.owner,
                    "lastRotatedAt": rotated.isoformat(),
                    "alias": k.alias,
                }
            )
        return out

    # -- records -------------------------------------------------------------------------------
    def _record(
        self,
        when: datetime,
        name: str,
        key: Key | None,
        who: Principal | None,
        *,
        params: dict[str, Any] | None = None,
        error: tuple[str, str] | None = None,
        read_only: bool = True,
        account: str | None = None,
        region: str | None = None,
        service_event: bool = False,
        invoked_by: str | None = None,
    ) -> dict[str, Any]:
        account = account or (key.account if key else ACCOUNTS["prod"])
        region = region or (key.region if key else REGIONS[0])
        rec: dict[str, Any] = {"eventVersion": "1.08"}
        if service_event or who is None:
            rec["userIdentity"] = {"accountId": account, "invokedBy": "AWS Internal"}
        else:
            rec["userIdentity"] = who.identity(self.rng)
            if invoked_by:
                rec["userIdentity"]["invokedBy"] = invoked_by
        rec["eventTime"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        rec["eventSource"] = "kms.amazonaws.com"
        rec["eventName"] = name
        rec["awsRegion"] = region
        if service_event or who is None:
            rec["sourceIPAddress"] = "AWS Internal"
        else:
            rec["sourceIPAddress"] = invoked_by or who.ip
            rec["userAgent"] = invoked_by or who.user_agent
        if error:
            rec["errorCode"], rec["errorMessage"] = error
        rec["requestParameters"] = params
        rec["responseElements"] = None
        rec["requestID"] = self._uuid()
        rec["eventID"] = self._uuid()
        rec["readOnly"] = read_only
        if key is not None:
            rec["resources"] = [{"accountId": key.account, "type": "AWS::KMS::Key", "ARN": key.arn}]
        rec["eventType"] = "AwsServiceEvent" if service_event else "AwsApiCall"
        rec["managementEvent"] = True
        rec["recipientAccountId"] = account
        rec["eventCategory"] = "Management"
        if not service_event and who is not None:
            rec["tlsDetails"] = {
                "tlsVersion": "TLSv1.3",
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": f"kms.{region}.amazonaws.com",
            }
        self.records.append(rec)
        return rec

    def _usage_params(self, key: Key, op: str, who: Principal) -> dict[str, Any]:
        if op in ("Encrypt", "Decrypt", "GenerateDataKey"):
            params: dict[str, Any] = {"keyId": key.arn if op != "Encrypt" else key.alias}
            params["encryptionAlgorithm"] = "SYMMETRIC_DEFAULT"
            if op == "GenerateDataKey":
                params = {"keyId": key.alias, "keySpec": "AES_256"}
            params["encryptionContext"] = {
                "service": who.name.split("-")[0],
                "tenant": f"t{self.rng.randrange(50)}",
            }
            return params
        if op in ("Sign", "Verify"):
            algo = "RSASSA_PSS_SHA_256" if key.key_spec.startswith("RSA") else "ECDSA_SHA_384"
            return {"keyId": key.arn, "messageType": "DIGEST", "signingAlgorithm": algo}
        return {"keyId": key.arn, "macAlgorithm": "HMAC_SHA_256"}

    @staticmethod
    def _diurnal(hour: datetime) -> float:
        """Relative activity by hour of day and weekday: peak mid-afternoon UTC, low at night."""
        day = 0.35 + 0.65 * max(0.0, math.sin(math.pi * (hour.hour - 5) / 16)) if 5 <= hour.hour <= 21 else 0.2
        return day * (0.45 if hour.weekday() >= 5 else 1.0)

    def generate(self) -> list[dict[str, Any]]:
        """Build every record (benign traffic, lifecycle, incidents), sorted by time."""
        hours = int((self.end - self.start).total_seconds() // 3600)
        for h in range(hours):
            hour = self.start + timedelta(hours=h)
            factor = self._diurnal(hour)
            for key in self.keys:
                if key.orphan:
                    continue
                for who in key.users:
                    n = int(self.np.poisson(key.rate * factor))
                    for _ in range(n):
                        when = hour + timedelta(seconds=self.rng.randrange(3600))
                        op = self.rng.choice(key.ops)
                        err = None
                        if self.rng.random() < 0.0005:
                            err = (
                                "AccessDeniedException",
                                "User is not authorized to perform this operation",
                            )
                        self._record(when, op, key, who, params=self._usage_params(key, op, who), error=err)
            if hour.hour == 9 and hour.weekday() < 5:
                self._admin_reads(hour)
        self._rotations()
        self._incidents()
        self.records.sort(key=lambda r: (r["eventTime"], r["eventID"]))
        return self.records

    def _admin_reads(self, hour: datetime) -> None:
        for account in ACCOUNTS.values():
            admin = Principal("IAMUser", account, self.rng.choice(PEOPLE), ip=self._ip(False), user_agent=CONSOLE_UA)
            when = hour + timedelta(minutes=self.rng.randrange(60))
            self._record(when, "ListAliases", None, admin, params={"limit": 100}, account=account)
            key = self.rng.choice([k for k in self.keys if k.account == account])
            self._record(when + timedelta(seconds=3), "DescribeKey", key, admin, params={"keyId": key.arn})

    def _rotations(self) -> None:
        for key in self.keys:
            if key.key_spec == "SYMMETRIC_DEFAULT" and key.key_type in ("data", "session") and not key.orphan:
                when = self.start + timedelta(days=self.rng.randrange(1, max(2, (self.end - self.start).days)))
                self._record(when, "RotateKey", key, None, params=None, read_only=False, service_event=True)

    # -- incidents -----------------------------------------------------------------------------
    def _incident(self, kind: str, description: str, keys: list[Key], who: str, recs: list[dict[str, Any]]) -> None:
        times = sorted(r["eventTime"] for r in recs)
        inc = Incident(
            id=f"INC-{len(self.incidents) + 1:02d}",
            kind=kind,
            description=description,
            key_arns=[k.arn for k in keys],
            principal=who,
            start=datetime.fromisoformat(times[0]) if times else self.end,
            end=datetime.fromisoformat(times[-1]) if times else self.end,
            event_uids=[event_uid("aws.cloudtrail", r["eventID"], r) for r in recs],
        )
        self.incidents.append(inc)

    def _incidents(self) -> None:
        prod = [k for k in self.keys if k.account == ACCOUNTS["prod"] and not k.orphan]
        data_key = next(k for k in prod if k.key_type == "data")
        day = self.start + timedelta(days=(self.end - self.start).days * 2 // 3)

        # 1. Night-time decrypt burst by a role never seen on this key (credential theft, bulk decrypt).
        thief = Principal(
            "AssumedRole", ACCOUNTS["prod"], "ci-runner-deploy", "exfil-session", self._ip(), USER_AGENTS[1]
        )
        t0 = day.replace(hour=3, minute=12)
        recs = [
            self._record(
                t0 + timedelta(seconds=i * 1.5),
                "Decrypt",
                data_key,
                thief,
                params=self._usage_params(data_key, "Decrypt", thief),
            )
            for i in range(400)
        ]
        self._incident(
            "decrypt_burst_new_principal",
            "400 Decrypt calls in 10 minutes at 03:12 UTC by a role never seen on this key",
            [data_key],
            thief.arn,
            recs,
        )

        # 2. A key scheduled for deletion and disabled by a person, at night, outside any change window.
        victim = next(k for k in prod if k.key_type == "master")
        mallory = Principal("IAMUser", ACCOUNTS["prod"], "mallory", ip=self._ip(False), user_agent=CONSOLE_UA)
        t1 = (day + timedelta(days=1)).replace(hour=23, minute=48)
        recs = [
            self._record(t1, "DisableKey", victim, mallory, params={"keyId": victim.arn}, read_only=False),
            self._record(
                t1 + timedelta(minutes=1),
                "ScheduleKeyDeletion",
                victim,
                mallory,
                params={"keyId": victim.arn, "pendingWindowInDays": 7},
                read_only=False,
            ),
        ]
        self._incident(
            "unplanned_destruction",
            "master key disabled and scheduled for deletion (7-day window) at "
            "23:48 by a person, outside the orchestrator",
            [victim],
            mallory.arn,
            recs,
        )

        # 3. Use of that now-disabled key: the callers fail (evidence of impact, and a policy violation).
        app = victim.users[0]
        recs = [
            self._record(
                t1 + timedelta(minutes=5 + i),
                "Decrypt",
                victim,
                app,
                params=self._usage_params(victim, "Decrypt", app),
                error=("DisabledException", f"{victim.arn} is disabled."),
            )
            for i in range(12)
        ]
        self._incident(
            "use_of_disabled_key", "Decrypt attempts against the disabled master key", [victim], app.arn, recs
        )

        # 4. Key policy opened to every AWS principal.
        signing = next(k for k in prod if k.key_type == "signing")
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Enable IAM",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{signing.account}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "Open",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": ["kms:Sign", "kms:Verify"],
                    "Resource": "*",
                },
            ],
        }
        t2 = (day + timedelta(days=2)).replace(hour=14, minute=5)
        rec = self._record(
            t2,
            "PutKeyPolicy",
            signing,
            mallory,
            params={
                "keyId": signing.arn,
                "policyName": "default",
                "policy": json.dumps(policy),
                "bypassPolicyLockoutSafetyCheck": False,
            },
            read_only=False,
        )
        self._incident(
            "key_policy_public",
            "key policy grants kms:Sign to Principal AWS:*",
            [signing],
            mallory.arn,
            [rec],
        )

        # 5. A grant to a principal in an outside account.
        grant_key = next(k for k in prod if k.key_type == "session")
        rec = self._record(
            t2 + timedelta(minutes=20),
            "CreateGrant",
            grant_key,
            mallory,
            params={
                "keyId": grant_key.arn,
                "granteePrincipal": f"arn:aws:iam::{OUTSIDE_ACCOUNT}:role/partner",
                "operations": ["Decrypt", "GenerateDataKey"],
            },
            read_only=False,
        )
        self._incident(
            "grant_to_outside_account",
            f"grant on a session key to account {OUTSIDE_ACCOUNT}",
            [grant_key],
            mallory.arn,
            [rec],
        )

        # 6. Cross-account use: a principal from the outside account decrypts with a prod key.
        outsider = Principal("AssumedRole", OUTSIDE_ACCOUNT, "partner", "sync", self._ip(False), USER_AGENTS[2])
        t3 = (day + timedelta(days=3)).replace(hour=11)
        recs = [
            self._record(
                t3 + timedelta(minutes=7 * i),
                "Decrypt",
                grant_key,
                outsider,
                params=self._usage_params(grant_key, "Decrypt", outsider),
            )
            for i in range(6)
        ]
        self._incident(
            "cross_account_use",
            f"principal from account {OUTSIDE_ACCOUNT} decrypts with a prod key",
            [grant_key],
            outsider.arn,
            recs,
        )

        # 7. Access-denied probing across many keys by one principal.
        prober = Principal(
            "IAMUser", ACCOUNTS["staging"], "svc-reporting", ip=self._ip(False), user_agent=USER_AGENTS[1]
        )
        t4 = (day + timedelta(days=4)).replace(hour=2, minute=30)
        targets = self.rng.sample(self.keys, min(25, len(self.keys)))
        recs = [
            self._record(
                t4 + timedelta(seconds=10 * i),
                "Decrypt",
                k,
                prober,
                params={"keyId": k.arn},
                error=("AccessDeniedException", "User is not authorized to perform: kms:Decrypt"),
            )
            for i, k in enumerate(targets)
        ]
        self._incident(
            "access_denied_probe",
            f"{len(targets)} access-denied Decrypts across {len(targets)} keys in minutes",
            targets,
            prober.arn,
            recs,
        )

        # 8. The orphan: a key in the inventory that nothing used for the whole period.
        orphan = next(k for k in self.keys if k.orphan)
        self._incident(
            "orphaned_key",
            f"{orphan.key_type} key with no use in {(self.end - self.start).days} days",
            [orphan],
            "",
            [],
        )

        # 9. S3 ransomware with a fresh key: a stolen pipeline role creates a key, rewrites a bucket's
        # objects in place under it (S3 asks KMS for a data key per object), then schedules the
        # key's deletion with the shortest window, so the data becomes unreadable in 7 days.
        self._s3_ransomware((day + timedelta(days=5)).replace(hour=1, minute=40))

    def _s3_ransomware(self, t0: datetime) -> None:
        account, region = ACCOUNTS["prod"], REGIONS[0]
        crook = Principal("AssumedRole", account, "data-pipeline", "ransom-7f2a", self._ip(False), USER_AGENTS[1])
        key = Key(
            key_id=self._uuid(),
            account=account,
            region=region,
            key_type="data",
            key_spec="SYMMETRIC_DEFAULT",
            key_usage="ENCRYPT_DECRYPT",
            algorithm="AES-256",
            key_size=256,
            ops=("Encrypt", "Decrypt"),
            rate=0.0,
            owner="",
            alias="",
            created_at=t0,
        )
        create = self._record(t0, "CreateKey", key, crook, params={"keySpec": "SYMMETRIC_DEFAULT"}, read_only=False)
        create["responseElements"] = {"keyMetadata": {"arn": key.arn, "keyId": key.key_id, "keyState": "Enabled"}}
        recs = [create]
        bucket = "prod-invoices"
        for i in range(40):
            when = t0 + timedelta(minutes=10, seconds=9 * i)
            obj = f"2026/{i:04d}.pdf"
            copy = self._record(
                when,
                "CopyObject",
                key,
                crook,
                params={
                    "bucketName": bucket,
                    "key": obj,
                    "x-amz-copy-source": f"{bucket}/{obj}",
                    "x-amz-server-side-encryption": "aws:kms",
                    "x-amz-server-side-encryption-aws-kms-key-id": key.arn,
                },
                read_only=False,
            )
            copy["eventSource"], copy["eventCategory"], copy["managementEvent"] = "s3.amazonaws.com", "Data", False
            datakey = self._record(
                when,
                "GenerateDataKey",
                key,
                crook,
                params={
                    "keyId": key.arn,
                    "keySpec": "AES_256",
                    "encryptionContext": {"aws:s3:arn": f"arn:aws:s3:::{bucket}/{obj}"},
                },
                invoked_by="s3.amazonaws.com",
            )
            recs += [copy, datakey]
        recs.append(
            self._record(
                t0 + timedelta(hours=2),
                "ScheduleKeyDeletion",
                key,
                crook,
                params={"keyId": key.arn, "pendingWindowInDays": 7},
                read_only=False,
            )
        )
        self._incident(
            "s3_ransomware_fresh_key",
            f"a new key created at {t0:%H:%M}, {bucket}'s objects rewritten under it in place (40 in 6 minutes), "
            "its deletion scheduled 2 hours later with a 7-day window",
            [key],
            crook.arn,
            recs,
        )
