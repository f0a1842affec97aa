"""A Cloud Storage service agent encrypting many times with one key in a short time.

When a bucket uses a customer-managed key, the project's Cloud Storage service agent
(``service-<n>@gs-project-accounts.iam.gserviceaccount.com``) calls Cloud KMS Encrypt for every
object written. A burst of them under one key is what rewriting a bucket's objects looks like,
which is how the GCS ransomware-with-an-attacker-key technique encrypts a victim's data (Panther's
rule: 10 in 15 minutes). The cross-project variant, with the attacker's key in another project, is
also ``any.cross_account_use``. State per key, on the key's partition; windows in event time.
"""

from ingest.schema import KeyEvent, KeyOp, Provider
from streams.findings import Action, AnalyticType, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import GCS_SERVICE_AGENT_DOMAIN, principal, window_count

RULE = Rule(
    id="gcp_kms.storage_agent_bulk_encrypt",
    title="Cloud Storage service agent encrypting in bulk with one key",
    severity=Severity.MEDIUM,
    category=Category.ANOMALOUS_USAGE,
    action=Action.INVESTIGATE,
    ops=frozenset({KeyOp.ENCRYPT}),
    scope="key",
    attack=("T1486",),
    runbook="1. Find the bucket whose objects were rewritten (Cloud Storage data access logs) and who "
    "rewrote them. 2. If the key is not the bucket's own, restore the objects from versions.",
    false_positives="Bulk uploads into a CMEK bucket; raise the threshold for buckets that ingest in bulk.",
    covers=("#10",),
    analytic=AnalyticType.STATISTICAL,
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if event.provider is not Provider.GCP_KMS or not event.success or event.key is None:
        return None
    if GCS_SERVICE_AGENT_DOMAIN not in principal(event):
        return None
    cfg = ctx.policy.storage_agent_bulk_encrypt
    count, _ = window_count(ctx, f"gcs-encrypt|{event.key.uri}|{principal(event)}", event, cfg["window_seconds"])
    if count < cfg["min_encrypts"]:
        return None
    return Hit(
        dedup=f"{event.key.uri}|{principal(event)}",
        message=f"{principal(event)} encrypted {count} times with {event.key.uri} within {cfg['window_seconds']}s",
        details={"encrypts": count},
    )


def _encrypt(repeat: int, agent: str = "service-1@gs-project-accounts.iam.gserviceaccount.com") -> tuple:
    return step(
        "gcp/kms_entries.ndjson#0",
        {
            "protoPayload.methodName": "Encrypt",
            "protoPayload.authenticationInfo.principalEmail": agent,
            "insertId": "e{i}",
            "timestamp": "2026-11-20T10:00:{i:02d}.000Z",
        },
        repeat=repeat,
    )


CASES = (
    Case("twelve object writes in a minute", (_encrypt(12),), True),
    Case("three object writes", (_encrypt(3),), False),
    Case("an application encrypting", (_encrypt(12, "checkout@shop-prod.iam.gserviceaccount.com"),), False),
)
