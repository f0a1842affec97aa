"""Many secrets read by one principal in a short time (credential harvesting).

Elastic's "excessive secret retrieval" and Sentinel's "mass secret retrieval" for Key Vault; the
Stratus secrets-manager technique shows the same shape.
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
    ops=frozenset({KeyOp.SECRET_READ}),
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
    cfg = ctx.policy.secret_mass_read
    target = (
        event.details.get("secret_id") or event.details.get("secret_path") or event.details.get("secret_name") or "-"
    )
    _count, distinct = window_count(ctx.state, f"secrets|{principal(event)}", event, cfg["window_seconds"], str(target))
    if distinct < cfg["min_reads"]:
        return None
    return Hit(
        dedup=principal(event),
        message=f"{principal(event)} read {distinct} distinct secrets in {cfg['window_seconds']}s",
        details={"secrets": distinct},
        keys=[],
    )


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
)
