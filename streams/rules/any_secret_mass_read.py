"""Many secrets read by one principal in a short time (credential harvesting).

Elastic's "excessive secret retrieval" and Sentinel's "mass secret retrieval" for Key Vault; the
Stratus secrets-manager and SSM techniques show the same shape in the KMS stream: each secret or
SecureString parameter read is a Decrypt that AWS Secrets Manager or SSM makes for the principal,
with the secret's or parameter's ARN in the encryption context.
"""

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Action, AnalyticType, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import principal, window_count

RULE = Rule(
    id="any.secret_mass_read",
    title="Mass secret retrieval",
    severity=Severity.HIGH,
    category=Category.ANOMALOUS_USAGE,
    action=Action.INVESTIGATE,
    ops=frozenset({KeyOp.SECRET_READ, KeyOp.DECRYPT}),
    scope="principal",
    attack=("T1555", "T1552"),
    runbook="Rotate the secrets read; revoke the principal's access; find where the credentials came from.",
    false_positives="Configuration loaders reading many secrets at start-up (baseline them).",
    covers=("#19", "#26", "#29", "#33", "#44"),
    analytic=AnalyticType.STATISTICAL,
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if not event.success:
        return None
    if event.op is KeyOp.DECRYPT and not _secret_via_kms(event):
        return None
    cfg = ctx.policy.secret_mass_read
    d = event.details
    target = d.get("secret_id") or d.get("secret_path") or d.get("secret_name") or d.get("context_resource") or "-"
    _count, distinct = window_count(ctx, f"secrets|{principal(event)}", event, cfg["window_seconds"], str(target))
    if distinct < cfg["min_reads"]:
        return None
    return Hit(
        dedup=principal(event),
        message=f"{principal(event)} read {distinct} distinct secrets in {cfg['window_seconds']}s",
        details={"secrets": distinct},
        keys=[],
    )


def _secret_via_kms(event: KeyEvent) -> bool:
    resource = str(event.details.get("context_resource") or "")
    return ":secretsmanager:" in resource or ":ssm:" in resource


CASES = (
    Case(
        "12 secrets in a minute",
        (
            step(
                "azure/PT1H.json#2",
                {
                    "properties.id": "https://payments-kv.vault.azure.net/secrets/s{i}/1",
                    "time": "2026-11-21T00:00:{i:02d}.0000000Z",
                },
                repeat=12,
            ),
        ),
        True,
    ),
    Case(
        "one secret read twelve times",
        (step("azure/PT1H.json#2", {"time": "2026-11-21T00:00:{i:02d}.0000000Z"}, repeat=12),),
        False,
    ),
    Case(
        "12 secrets decrypted through Secrets Manager",
        (
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {
                    "eventID": "s{i}",
                    "requestParameters.encryptionContext": {
                        "SecretARN": "arn:aws:secretsmanager:us-east-1:111122223333:secret:s{i}"
                    },
                },
                repeat=12,
            ),
        ),
        True,
    ),
    Case("ordinary decrypts", (step("cloudtrail/decrypt_assumed_role.json", {"eventID": "s{i}"}, repeat=12),), False),
)
