"""One principal re-encrypting many S3 objects in place under a KMS key.

``CopyObject`` of an object onto itself with ``x-amz-server-side-encryption: aws:kms`` rewrites it
under the named key. Done to many objects in minutes it is the S3 ransomware technique: rewrite a
bucket under a key the attacker controls (or will delete), then demand payment for its use. Splunk
hunts for users doing it; kmo counts distinct objects per principal in event-time windows. The
cross-account variant (the key in the attacker's account) is also ``any.cross_account_use``.
"""

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Action, AnalyticType, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import principal, window_count

RULE = Rule(
    id="aws_kms.s3_reencrypt_burst",
    title="Many S3 objects re-encrypted in place under a KMS key",
    severity=Severity.HIGH,
    category=Category.ANOMALOUS_USAGE,
    action=Action.INVESTIGATE,
    ops=frozenset({KeyOp.ENCRYPT}),
    scope="principal",
    attack=("T1486",),
    runbook="1. Stop the principal (revoke its sessions). 2. Check the key the objects now use: if it "
    "is not the bucket's own, restore previous object versions. 3. Protect the key from deletion.",
    false_positives="A planned migration of a bucket to a new key (list its role in approved_principals).",
    covers=("#32",),
    analytic=AnalyticType.STATISTICAL,
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    d = event.details
    if event.operation != "CopyObject" or not event.success or "s3_object" not in d:
        return None
    if d.get("s3_copy_source", "").split("?", 1)[0].lstrip("/") != d["s3_object"]:
        return None  # a copy elsewhere is not a rewrite in place
    cfg = ctx.policy.s3_reencrypt_burst
    _count, objects = window_count(
        ctx, f"s3-reencrypt|{principal(event)}", event, cfg["window_seconds"], d["s3_object"]
    )
    if objects < cfg["min_objects"]:
        return None
    key = event.key.uri if event.key else "a KMS key"
    return Hit(
        dedup=principal(event),
        message=f"{principal(event)} re-encrypted {objects} S3 objects in place under {key} "
        f"within {cfg['window_seconds']}s",
        details={"objects": objects},
    )


def _copy(repeat: int, source: str = "victim-data/file-{i}.csv") -> tuple:
    return step(
        "cloudtrail/decrypt_assumed_role.json",
        {
            "eventSource": "s3.amazonaws.com",
            "eventName": "CopyObject",
            "eventID": "c{i}",
            "eventTime": "2026-11-09T03:12:{i:02d}Z",
            "requestParameters": {
                "bucketName": "victim-data",
                "key": "file-{i}.csv",
                "x-amz-copy-source": source,
                "x-amz-server-side-encryption": "aws:kms",
                "x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:us-east-1:111122223333:key/"
                "1234abcd-12ab-34cd-56ef-1234567890ab",
            },
        },
        repeat=repeat,
    )


CASES = (
    Case("twelve objects rewritten in place", (_copy(12),), True),
    Case("three objects rewritten", (_copy(3),), False),
    Case("twelve objects copied to another bucket", (_copy(12, "staging/file-{i}.csv"),), False),
)
