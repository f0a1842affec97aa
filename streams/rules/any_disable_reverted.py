"""A key disabled and re-enabled shortly after.

Disabling a key briefly breaks everything that uses it; undoing it quickly hides a test of
defences, an extortion demonstration, or a cover-up of use while disabled.
"""

from datetime import timedelta

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import principal

RULE = Rule(
    id="any.disable_reverted",
    title="Key disabled then quickly re-enabled",
    severity=Severity.MEDIUM,
    category=Category.POLICY_VIOLATION,
    action=Action.INVESTIGATE,
    ops=frozenset({KeyOp.DISABLE, KeyOp.ENABLE}),
    scope="key",
    attack=("T1489",),
    runbook="Find both actors and the reason; check for failed uses of the key in between.",
    false_positives="Operators correcting a mistaken disable.",
    covers=("gap:disable-reverted",),
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if not event.success or event.key is None:
        return None
    name = f"disabled-at|{event.key.uri}"
    if event.op is KeyOp.DISABLE:
        ctx.state[name] = event.time.timestamp()
        return None
    when = ctx.state.get(name)
    if when is None:
        return None
    gap = event.time.timestamp() - when
    if 0 <= gap <= timedelta(minutes=ctx.policy.disable_revert_minutes).total_seconds():
        return Hit(
            dedup=event.key.uri,
            message=f"{event.key.uri} re-enabled by {principal(event)} {int(gap)}s after being disabled",
            details={"seconds_disabled": int(gap)},
        )
    return None


CASES = (
    Case(
        "disabled then enabled 10 minutes later",
        (
            step("cloudtrail/decrypt_assumed_role.json", {"eventName": "DisableKey", "eventID": "d"}),
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {"eventName": "EnableKey", "eventID": "e", "eventTime": "2026-11-09T03:22:07Z"},
            ),
        ),
        True,
    ),
    Case(
        "enabled a day later",
        (
            step("cloudtrail/decrypt_assumed_role.json", {"eventName": "DisableKey", "eventID": "d"}),
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {"eventName": "EnableKey", "eventID": "e", "eventTime": "2026-11-10T03:22:07Z"},
            ),
        ),
        False,
    ),
)
