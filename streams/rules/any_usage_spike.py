"""A principal's use of a key far above its own history (bulk decryption, data theft).

Per key and principal, usage is counted in event-time windows; a window fires when it reaches both
an absolute floor and ``factor`` times the busiest earlier window seen for that pair. A pair seen
for the first time has no history, so only the floor applies.
"""

from ingest.schema import USAGE_OPS, KeyEvent
from streams.findings import Action, AnalyticType, Category, Severity, window_start
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import principal, window_count

RULE = Rule(
    id="any.usage_spike",
    title="Key usage spike for a principal",
    severity=Severity.HIGH,
    category=Category.ANOMALOUS_USAGE,
    action=Action.INVESTIGATE,
    ops=USAGE_OPS,
    scope="key",
    attack=("T1530", "T1555"),
    runbook="1. Who is the principal and what normally drives its volume? 2. If unexplained: revoke its "
    "access to the key and look at what it decrypted (encryption context, request ids).",
    false_positives="Batch jobs and backfills (they repeat: their history raises the baseline).",
    covers=("#10", "#26", "#33", "#36", "#44"),
    dedup_seconds=3600,
    analytic=AnalyticType.STATISTICAL,
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if not event.success or event.key is None:
        return None
    cfg = ctx.policy.usage_spike
    pair = f"{event.key.uri}|{principal(event)}"
    # A key's events arrive in order (one partition, in the order its source wrote them), and the
    # history below follows windows forward only: a window no longer the newest counts nothing more.
    count, _ = window_count(ctx, f"spike|{pair}", event, cfg["window_seconds"], held=1)
    start = int(window_start(event.time, cfg["window_seconds"]).timestamp())
    peak_key = f"spike-peak|{pair}"
    peak = ctx.state.get(peak_key) or {"window": start, "max_before": 0, "current": 0}
    if start < peak["window"]:
        return None  # late for a finished window: neither a spike of its own nor part of the history
    if start > peak["window"]:  # a new window: the finished one joins the history
        peak = {"window": start, "max_before": max(peak["max_before"], peak["current"]), "current": 0}
    peak["current"] = count
    ctx.state[peak_key] = peak
    threshold = max(cfg["min_events"], cfg["factor"] * peak["max_before"])
    if count < threshold:
        return None
    return Hit(
        dedup=pair,
        message=f"{principal(event)} made {count} {event.op} calls with {event.key.uri} "
        f"within {cfg['window_seconds']}s (previous peak {peak['max_before']})",
        details={"count": count, "previous_peak": peak["max_before"]},
    )


_EACH = {"eventID": "spike-{i}", "eventTime": "2026-11-20T03:0{m}:{s:02d}Z"}
CASES = (
    Case("250 decrypts in 5 minutes", (step("cloudtrail/decrypt_assumed_role.json", _EACH, repeat=250),), True),
    Case("50 decrypts", (step("cloudtrail/decrypt_assumed_role.json", _EACH, repeat=50),), False),
)
