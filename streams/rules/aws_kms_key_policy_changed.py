"""A KMS key policy replaced by someone other than the approved path.

The key policy is the root of a KMS key's access control: whoever can rewrite it can grant
themselves every other permission on the key. Elastic flags every PutKeyPolicy by a non-service
identity; kmo does the same but lets the approved principals (kmo's orchestrator, the platform
pipeline) through, so the finding means "changed by hand". Policies opened to everyone or to an
outside account raise the high-severity ``aws_kms.key_policy_public`` as well.
"""

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import approved, is_service, principal

RULE = Rule(
    id="aws_kms.key_policy_changed",
    title="KMS key policy changed outside the approved path",
    severity=Severity.LOW,
    category=Category.POLICY_VIOLATION,
    action=Action.REVIEW_POLICY,
    ops=frozenset({KeyOp.POLICY_CHANGE}),
    attack=("T1098",),
    runbook="1. Diff the new policy against the previous one (GetKeyPolicy history in CloudTrail). "
    "2. Confirm the change with the key's owner; revert it if nobody asked for it.",
    false_positives="Infrastructure-as-code pipelines not listed in approved_principals.",
    covers=("#24",),
    dedup_seconds=86400,
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if event.operation != "PutKeyPolicy" or not event.success or is_service(event) or approved(event, ctx.policy):
        return None
    target = event.key.uri if event.key else event.key_alias or "-"
    return Hit(dedup=f"{target}|{principal(event)}", message=f"{principal(event)} replaced the key policy of {target}")


CASES = (
    Case(
        "PutKeyPolicy by a role", (step("cloudtrail/decrypt_assumed_role.json", {"eventName": "PutKeyPolicy"}),), True
    ),
    Case(
        "PutKeyPolicy by the approved orchestrator",
        (step("cloudtrail/decrypt_assumed_role.json", {"eventName": "PutKeyPolicy"}),),
        False,
        policy={"approved_principals": ["arn:aws:iam::111122223333:role/payments-app"]},
    ),
    Case(
        "PutKeyPolicy refused",
        (
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {"eventName": "PutKeyPolicy", "errorCode": "AccessDeniedException"},
            ),
        ),
        False,
    ),
    Case("GetKeyPolicy", (step("cloudtrail/decrypt_assumed_role.json", {"eventName": "GetKeyPolicy"}),), False),
)
