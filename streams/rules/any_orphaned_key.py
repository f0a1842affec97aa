"""Inventory keys nobody has used for the policy's orphan threshold.

An unused key is attack surface and cost with no purpose. Only keys whose key manager logs usage
are judged (CloudHSM audit logs record management, not use; see key-managers.md), and "no use
seen" counts only when the key's source was read: silence is not evidence on its own.
"""

from datetime import datetime, timedelta

from ingest.schema import Provider
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step

_USAGE_LOGGED = frozenset({Provider.AWS_KMS, Provider.GCP_KMS, Provider.AZURE_KEYVAULT, Provider.VAULT})

RULE = Rule(
    id="any.orphaned_key",
    title="Orphaned key: no use within the threshold",
    severity=Severity.LOW,
    category=Category.ORPHANED_KEY,
    action=Action.DECOMMISSION,
    ops=None,
    scope="absence",
    runbook="Confirm with the owner that nothing depends on the key (data encrypted long ago still needs it); "
    "then disable it, wait, and destroy it through the orchestrator.",
    false_positives="Keys that protect archives read rarely (backups, legal holds).",
    covers=("gap:orphaned-key",),
    dedup_seconds=7 * 86400,
)


def check(now: datetime, ctx: Context) -> list[tuple[Hit, datetime]]:
    threshold = timedelta(days=ctx.policy.orphan_days)
    out = []
    for key in ctx.inventory.keys.values():
        if Provider(key.system) not in _USAGE_LOGGED or key.status in ("destroyed", "pending-destruction"):
            continue
        last = ctx.state.get(f"last-use|{key.uri}")
        since = datetime.fromtimestamp(last, tz=now.tzinfo) if last else key.created_at
        if since is not None and now - since < threshold:
            continue
        what = f"last used {since:%Y-%m-%d}" if last else "no use seen"
        out.append(
            (
                Hit(
                    dedup=key.uri,
                    message=f"{key.uri} ({key.key_type}, owner {key.owner}): {what}",
                    keys=[key.uri],
                    actor=None,
                    details={"last_use": since.isoformat() if since else None},
                ),
                now,
            )
        )
    return out


_INV = (
    {
        "keyId": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "keyType": "data",
        "keyManagementSystem": "aws-kms",
        "createdAt": "2025-01-01T00:00:00Z",
        "owner": "team-a",
    },
)
CASES = (
    Case("no use for 90 days", (), True, inventory=_INV, now="2026-12-01T00:00:00Z"),
    Case(
        "used last week",
        (step("cloudtrail/decrypt_assumed_role.json", {"eventTime": "2026-11-25T00:00:00Z"}),),
        False,
        inventory=_INV,
        now="2026-12-01T00:00:00Z",
    ),
)
