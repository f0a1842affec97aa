"""Destruction scheduled with a short pending window.

The pending window is the only time a mistaken or malicious destruction can be undone; attackers
choose the minimum (7 days on AWS). kmo's policy sets the floor (default 30 days).
"""

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import principal

RULE = Rule(
    id="any.short_pending_window",
    title="Key destruction scheduled with a short pending window",
    severity=Severity.HIGH,
    category=Category.POLICY_VIOLATION,
    action=Action.CANCEL_DESTROY,
    ops=frozenset({KeyOp.SCHEDULE_DESTROY}),
    attack=("T1485",),
    runbook="Cancel the deletion, then reschedule through the orchestrator with the policy's window if it is wanted.",
    false_positives="Test accounts with a shorter window by design (raise min_pending_window_days there).",
    covers=("gap:short-pending-window",),
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    days = event.details.get("pending_window_days")
    if not event.success or not isinstance(days, int) or days >= ctx.policy.min_pending_window_days:
        return None
    key = event.key.uri if event.key else "-"
    return Hit(
        dedup=key,
        message=f"{principal(event)} scheduled {key} for destruction in {days} days",
        details={"pending_window_days": days},
    )


CASES = (
    Case("7-day window", (step("cloudtrail/schedule_deletion_denied_alias.json", {"errorCode": None}),), True),
    Case(
        "30-day window",
        (
            step(
                "cloudtrail/schedule_deletion_denied_alias.json",
                {"errorCode": None, "requestParameters.pendingWindowInDays": 30},
            ),
        ),
        False,
    ),
)
