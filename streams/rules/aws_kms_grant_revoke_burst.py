"""Many KMS grants retired or revoked by one principal in a short time.

Grants are how AWS services and workloads get temporary use of a key (EBS volumes, RDS, Lambda);
retiring or revoking them in bulk cuts those workloads off their data at once: an outage, or the
first step of an extortion that does not need to touch the key itself. One revocation is routine
clean-up; a burst is not. No public rule looks for it (gap 6 in ../shared/design/detections.md).
"""

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Action, AnalyticType, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import is_service, principal, window_count

RULE = Rule(
    id="aws_kms.grant_revoke_burst",
    title="Burst of KMS grants retired or revoked by one principal",
    severity=Severity.HIGH,
    category=Category.ANOMALOUS_USAGE,
    action=Action.INVESTIGATE,
    ops=frozenset({KeyOp.REVOKE_GRANT}),
    scope="principal",
    attack=("T1485", "T1489"),
    runbook="1. List the grants removed (ListRetirableGrants/ListGrants against CloudTrail). 2. Recreate "
    "the ones workloads need. 3. Find why the principal removed them.",
    false_positives="A service retiring the grants of many resources it deleted (EBS, RDS clean-up) "
    "is an AWS service principal and does not count.",
    covers=("gap:grant-abuse",),
    analytic=AnalyticType.STATISTICAL,
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if not event.success or is_service(event):
        return None
    cfg = ctx.policy.grant_revoke_burst
    grant = event.details.get("grant_id") or event.request_id or event.uid
    count, _distinct = window_count(ctx, f"grant-revoke|{principal(event)}", event, cfg["window_seconds"], str(grant))
    if count < cfg["min_revocations"]:
        return None
    return Hit(
        dedup=principal(event),
        message=f"{principal(event)} retired or revoked {count} grants within {cfg['window_seconds']}s",
        details={"revocations": count},
    )


CASES = (
    Case(
        "twelve grants revoked in two minutes",
        (
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {"eventName": "RevokeGrant", "eventID": "g{i}", "eventTime": "2026-11-09T03:12:{i:02d}Z"},
                repeat=12,
            ),
        ),
        True,
    ),
    Case(
        "three grants revoked",
        (
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {"eventName": "RetireGrant", "eventID": "g{i}", "eventTime": "2026-11-09T03:12:{i:02d}Z"},
                repeat=3,
            ),
        ),
        False,
    ),
)
