"""Repeated failed logins to an HSM partition.

HSM credentials are few and powerful; a run of wrong PINs is guessing (and on some HSMs, a step
towards zeroisation).
"""

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Action, AnalyticType, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import principal, window_count

RULE = Rule(
    id="pkcs11.failed_login_burst",
    title="Failed HSM login burst",
    severity=Severity.HIGH,
    category=Category.ANOMALOUS_USAGE,
    action=Action.INVESTIGATE,
    ops=frozenset({KeyOp.LOGIN}),
    scope="principal",
    attack=("T1110",),
    runbook="Identify the client; block it at the network; rotate the partition credentials if it is not ours.",
    false_positives="A client deployed with a stale PIN retrying.",
    covers=("gap:hsm-failed-logins",),
    analytic=AnalyticType.STATISTICAL,
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if event.success:
        return None
    cfg = ctx.policy.failed_login_burst
    who = principal(event)
    count, _ = window_count(ctx, f"logins|{who}|{event.account}", event, cfg["window_seconds"])
    if count < cfg["min_failures"]:
        return None
    return Hit(
        dedup=f"{who}|{event.account}",
        message=f"{count} failed HSM logins by {who} on {event.account}",
        details={"failures": count},
        keys=[],
    )


CASES = (
    Case(
        "6 wrong PINs",
        (
            step(
                "luna/luna_cloud_hsm_export.json#0",
                {"status": "LUNA_RET_PIN_INCORRECT", "time": "2026-11-20 09:15:0{i} UTC"},
                repeat=6,
            ),
        ),
        True,
    ),
    Case("one wrong PIN", (step("luna/luna_cloud_hsm_export.json#0", {"status": "LUNA_RET_PIN_INCORRECT"}),), False),
)
