"""EBS encryption by default switched off, or its default KMS key changed, outside the approved path.

With the account default off, every new volume and snapshot copy in the region is written in the
clear unless its creator asks otherwise; pointing the default at another key (one an attacker holds,
or one in another account) quietly moves who can read every new volume. Sigma flags the first;
kmo also flags the second, because the key is the part a key owner cares about.
"""

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import approved, principal

RULE = Rule(
    id="aws_kms.ebs_default_encryption_off",
    title="EBS default encryption turned off or moved to another key",
    severity=Severity.MEDIUM,
    category=Category.POLICY_VIOLATION,
    action=Action.INVESTIGATE,
    ops=frozenset({KeyOp.CONFIG_CHANGE}),
    attack=("T1486", "T1562"),
    runbook="1. Turn EBS encryption by default back on (ec2 enable-ebs-encryption-by-default) or restore "
    "the default key. 2. List volumes created since the change and re-encrypt them.",
    false_positives="A platform team changing the default key during a planned key migration.",
    covers=("#5",),
)

_CALLS = frozenset({"DisableEbsEncryptionByDefault", "ModifyEbsDefaultKmsKeyId"})


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if event.service != "ec2.amazonaws.com" or event.operation not in _CALLS or not event.success:
        return None
    if approved(event, ctx.policy):
        return None
    where = f"{event.account or '-'}/{event.region or '-'}"
    if event.operation == "DisableEbsEncryptionByDefault":
        return Hit(dedup=where, message=f"{principal(event)} turned off EBS encryption by default in {where}")
    target = event.key.uri if event.key else "another key"
    return Hit(dedup=where, message=f"{principal(event)} set the EBS default key in {where} to {target}")


_EC2 = {"eventSource": "ec2.amazonaws.com", "resources": None}

CASES = (
    Case(
        "default encryption disabled",
        (
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {**_EC2, "eventName": "DisableEbsEncryptionByDefault", "requestParameters": {}},
            ),
        ),
        True,
    ),
    Case(
        "default key moved to another account's key",
        (
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {
                    **_EC2,
                    "eventName": "ModifyEbsDefaultKmsKeyId",
                    "requestParameters": {
                        "ModifyEbsDefaultKmsKeyIdRequest": {
                            "KmsKeyId": "arn:aws:kms:eu-west-1:999999999999:key/0000aaaa-0000-4000-8000-000000000001"
                        }
                    },
                },
            ),
        ),
        True,
    ),
    Case(
        "default encryption enabled",
        (
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {**_EC2, "eventName": "EnableEbsEncryptionByDefault", "requestParameters": {}},
            ),
        ),
        False,
    ),
    Case(
        "disable refused",
        (
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {
                    **_EC2,
                    "eventName": "DisableEbsEncryptionByDefault",
                    "requestParameters": {},
                    "errorCode": "UnauthorizedOperation",
                },
            ),
        ),
        False,
    ),
)
