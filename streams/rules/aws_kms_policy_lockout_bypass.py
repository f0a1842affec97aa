"""Key policy set with the lockout safety check bypassed, or without the account's root principal.

``BypassPolicyLockoutSafetyCheck`` lets a caller install a key policy that locks everyone,
including administrators, out of the key; recovery needs AWS Support. Legitimate uses are rare.
A policy that no longer names the key's account (``arn:aws:iam::<account>:root`` or the bare
account id) stops IAM policies from granting access to the key at all: the same lock-out, one
step away (gap 5 in ../shared/design/detections.md).
"""

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import key_account, policy_doc, principal

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
    if not event.success:
        return None
    key = event.key.uri if event.key else "-"
    if event.details.get("bypass_policy_lockout_safety_check") is True:
        return Hit(dedup=key, message=f"{principal(event)} bypassed the policy lockout safety check on {key}")
    doc = policy_doc(event)
    account = key_account(event)
    if event.operation != "PutKeyPolicy" or doc is None or account is None or _names_account(doc, account):
        return None
    return Hit(dedup=key, message=f"{principal(event)} set a key policy on {key} that leaves out account {account}")


def _names_account(doc: dict, account: str) -> bool:
    """Whether some Allow statement names the account (its root ARN or bare id) as a principal."""
    statements = doc.get("Statement")
    for st in statements if isinstance(statements, list) else [statements]:
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        found = st.get("Principal")
        aws = found.get("AWS") if isinstance(found, dict) else found
        for value in aws if isinstance(aws, list) else [aws]:
            if isinstance(value, str) and value in (account, f"arn:aws:iam::{account}:root", "*"):
                return True
    return False


_ROLE_ONLY = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":'
    '"arn:aws:iam::111122223333:role/payments-app"},"Action":"kms:*","Resource":"*"}]}'
)
_WITH_ROOT = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":'
    '"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}'
)

CASES = (
    Case(
        "bypass set",
        (step("cloudtrail/create_key_no_resources.json", {"requestParameters.bypassPolicyLockoutSafetyCheck": True}),),
        True,
    ),
    Case("bypass not set", (step("cloudtrail/create_key_no_resources.json"),), False),
    Case(
        "policy without the account root",
        (
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {"eventName": "PutKeyPolicy", "requestParameters.policy": _ROLE_ONLY},
            ),
        ),
        True,
    ),
    Case(
        "policy keeping the account root",
        (
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {"eventName": "PutKeyPolicy", "requestParameters.policy": _WITH_ROOT},
            ),
        ),
        False,
    ),
)
