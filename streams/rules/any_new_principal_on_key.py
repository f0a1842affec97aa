"""A principal using a key for the first time, after the key's usage pattern is established.

Keys serve a stable set of workloads; a new identity using one (after a learning period measured in
event time from the key's first use) is how stolen credentials and lateral movement show up.
"""

from datetime import timedelta

from ingest.schema import USAGE_OPS, KeyEvent
from streams.findings import Action, AnalyticType, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import is_service, principal

RULE = Rule(
    id="any.new_principal_on_key",
    title="New principal using a key",
    severity=Severity.MEDIUM,
    category=Category.ANOMALOUS_USAGE,
    action=Action.INVESTIGATE,
    ops=USAGE_OPS,
    scope="key",
    attack=("T1078",),
    runbook="Confirm the principal is a new deployment of an existing workload; if not, revoke its access.",
    false_positives="New services and redeployments with new role names.",
    covers=("#27", "gap:first-seen-principal"),
    dedup_seconds=86400,
    analytic=AnalyticType.STATISTICAL,
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if not event.success or event.key is None or is_service(event):
        return None
    key = event.key.uri
    first = ctx.state.get(f"key-first|{key}")
    stamp = event.time.timestamp()
    if first is None or stamp < first:
        ctx.state[f"key-first|{key}"] = first = stamp if first is None else min(first, stamp)
    seen_key = f"key-principal|{key}|{principal(event)}"
    seen = ctx.state.get(seen_key)
    ctx.state[seen_key] = min(seen, stamp) if seen is not None else stamp
    learning = timedelta(days=ctx.policy.new_principal_learning_days).total_seconds()
    if seen is not None or stamp - first < learning:
        return None
    return Hit(dedup=f"{key}|{principal(event)}", message=f"{principal(event)} used {key} for the first time")


CASES = (
    Case(
        "a new role after 5 days of history",
        (
            step("cloudtrail/decrypt_assumed_role.json", {"eventTime": "2026-11-01T10:00:00Z", "eventID": "a"}),
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {
                    "eventTime": "2026-11-06T10:00:00Z",
                    "eventID": "b",
                    "userIdentity.sessionContext.sessionIssuer.arn": "arn:aws:iam::111122223333:role/intruder",
                },
            ),
        ),
        True,
    ),
    Case(
        "the same role again",
        (
            step("cloudtrail/decrypt_assumed_role.json", {"eventTime": "2026-11-01T10:00:00Z", "eventID": "a"}),
            step("cloudtrail/decrypt_assumed_role.json", {"eventTime": "2026-11-06T10:00:00Z", "eventID": "b"}),
        ),
        False,
    ),
)
