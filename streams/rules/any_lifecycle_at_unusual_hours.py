"""Key lifecycle changes by a person at unusual hours.

Admin operations (create, disable, destroy, policy and grant changes, exports) by people cluster in
working hours; the same operations at 3 a.m. are a classic sign of stolen credentials. "Unusual" is
learned per person: it fires only for someone with an established daytime history (at least five
earlier lifecycle operations, at most one in ten of them at night), so night-shift staff and
one-off callers do not.
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
    scope="principal",
    attack=("T1078",),
    runbook="Confirm with the person (out of band) that they made the change.",
    false_positives="On-call engineers; teams in other time zones (adjust unusual_hours).",
    covers=("gap:admin-unusual-hours",),
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if not event.success or not is_human(event):
        return None
    name = f"hours|{principal(event)}"
    history = ctx.state.get(name) or {"day": 0, "night": 0}
    night = ctx.policy.unusual_hour(event.time.hour)
    ctx.state[name] = {"day": history["day"] + (not night), "night": history["night"] + night}
    total = history["day"] + history["night"]
    if not night or total < 5 or history["night"] > total / 10:
        return None
    return Hit(
        dedup=principal(event),
        message=f"{principal(event)} ran {event.operation} at {event.time:%H:%M} UTC "
        f"(earlier: {history['day']} by day, {history['night']} at night)",
    )


_DAY = {"errorCode": None, "eventName": "PutKeyPolicy", "eventID": "d{i}", "eventTime": "2026-11-1{i}T11:00:00Z"}
CASES = (
    Case(
        "policy change at 23:49 after a week of daytime work",
        (
            step("cloudtrail/schedule_deletion_denied_alias.json", _DAY, repeat=6),
            step("cloudtrail/schedule_deletion_denied_alias.json", {"errorCode": None, "eventName": "PutKeyPolicy"}),
        ),
        True,
    ),
    Case(
        "the same at noon",
        (
            step("cloudtrail/schedule_deletion_denied_alias.json", _DAY, repeat=6),
            step(
                "cloudtrail/schedule_deletion_denied_alias.json",
                {"errorCode": None, "eventName": "PutKeyPolicy", "eventTime": "2026-11-20T12:00:00Z"},
            ),
        ),
        False,
    ),
    Case(
        "a first-time caller at night",
        (step("cloudtrail/schedule_deletion_denied_alias.json", {"errorCode": None, "eventName": "PutKeyPolicy"}),),
        False,
    ),
)
