"""Key policy set with the lockout safety check bypassed.

``BypassPolicyLockoutSafetyCheck`` lets a caller install a key policy that locks everyone,
including administrators, out of the key; recovery needs AWS Support. Legitimate uses are rare.
"""

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import principal

RULE = Rule(
    id="aws_kms.policy_lockout_bypass",
    title="KMS policy lockout safety check bypassed",
    severity=Severity.MEDIUM,
    category=Category.POLICY_VIOLATION,
    action=Action.REVIEW_POLICY,
    ops=frozenset({KeyOp.POLICY_CHANGE, KeyOp.CREATE}),
    attack=("T1098",),
    runbook="Check that administrators can still manage the key (GetKeyPolicy); restore access if not.",
    false_positives="Automation creating keys for a principal that does not exist yet.",
    covers=("gap:policy-lockout-bypass",),
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if not event.success or event.details.get("bypass_policy_lockout_safety_check") is not True:
        return None
    key = event.key.uri if event.key else "-"
    return Hit(dedup=key, message=f"{principal(event)} bypassed the policy lockout safety check on {key}")


CASES = (
    Case(
        "bypass set",
        (step("cloudtrail/create_key_no_resources.json", {"requestParameters.bypassPolicyLockoutSafetyCheck": True}),),
        True,
    ),
    Case("bypass not set", (step("cloudtrail/create_key_no_resources.json"),), False),
)
