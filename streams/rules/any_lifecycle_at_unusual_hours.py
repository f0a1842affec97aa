"""Key lifecycle changes by a person at unusual hours.

Admin operations (create, disable, destroy, policy and grant changes, exports) by people cluster in
working hours; the same operations at 3 a.m. are a classic sign of stolen credentials.
"""

from ingest.schema import EventClass, KeyEvent, KeyOp
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import is_human, principal

LIFECYCLE = frozenset(op for op in KeyOp if op.event_class is EventClass.ENTITY_MANAGEMENT)

RULE = Rule(
    id="any.lifecycle_at_unusual_hours",
    title="Key administration by a person at an unusual hour",
    severity=Severity.MEDIUM,
    category=Category.ANOMALOUS_USAGE,
    action=Action.INVESTIGATE,
    ops=LIFECYCLE,
    attack=("T1078",),
    runbook="Confirm with the person (out of band) that they made the change.",
    false_positives="On-call engineers; teams in other time zones (adjust unusual_hours).",
    covers=("gap:admin-unusual-hours",),
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if not event.success or not is_human(event) or not ctx.policy.unusual_hour(event.time.hour):
        return None
    return Hit(dedup=principal(event), message=f"{principal(event)} ran {event.operation} at {event.time:%H:%M} UTC")


CASES = (
    Case(
        "policy change at 23:49",
        (step("cloudtrail/schedule_deletion_denied_alias.json", {"errorCode": None, "eventName": "PutKeyPolicy"}),),
        True,
    ),
    Case(
        "same at noon",
        (
            step(
                "cloudtrail/schedule_deletion_denied_alias.json",
                {"errorCode": None, "eventName": "PutKeyPolicy", "eventTime": "2026-11-20T12:00:00Z"},
            ),
        ),
        False,
    ),
)
