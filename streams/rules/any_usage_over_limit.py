"""A key version approaching its safe operation limit.

AES-GCM with random 96-bit IVs must not exceed 2^32 encryptions under one key (NIST SP 800-38D);
no KMS counts them for you. kmo counts usage per key version and recommends rotation at the
policy's warning fraction of the limit.
"""

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Action, AnalyticType, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step

RULE = Rule(
    id="any.usage_over_limit",
    title="Key version near its operation limit",
    severity=Severity.MEDIUM,
    category=Category.POLICY_VIOLATION,
    action=Action.ROTATE,
    ops=frozenset({KeyOp.ENCRYPT, KeyOp.GENERATE_DATA_KEY, KeyOp.WRAP}),
    scope="key",
    runbook="Rotate the key; new encryptions then use a fresh version.",
    false_positives="None: the count is a fact; set max_operations_per_version for non-GCM keys.",
    covers=("gap:usage-based-rotation",),
    dedup_seconds=30 * 86400,
    analytic=AnalyticType.STATISTICAL,
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if not event.success or event.key is None:
        return None
    name = f"ops|{event.key.uri}|{event.key_version or '-'}"
    count = (ctx.state.get(name) or 0) + 1
    ctx.state[name] = count
    limit = ctx.policy.max_operations_per_version
    if count < limit * ctx.policy.usage_warn_fraction:
        return None
    return Hit(
        dedup=f"{event.key.uri}|{event.key_version}",
        message=f"{event.key.uri} version {event.key_version} used {count} times (limit {limit})",
        details={"count": count, "limit": limit},
    )


CASES = (
    Case(
        "count reaches the warning level",
        (step("vault/transit_session.log#1", {"request.id": "r{i}"}, repeat=3),),
        True,
        policy={"max_operations_per_version": 3, "usage_warn_fraction": 0.9},
    ),
    Case(
        "below it",
        (step("vault/transit_session.log#1", {"request.id": "r{i}"}, repeat=2),),
        False,
        policy={"max_operations_per_version": 3, "usage_warn_fraction": 0.9},
    ),
)
