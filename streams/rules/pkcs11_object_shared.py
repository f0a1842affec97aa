"""HSM key object shared with another user.

Sharing a key handle (CloudHSM ``CN_SHARE_OBJECT``) gives another crypto user the power to use it;
on an HSM that is a change of custody.
"""

from ingest.schema import KeyEvent, KeyOp, Provider
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step

RULE = Rule(
    id="pkcs11.object_shared",
    title="HSM key shared with another user",
    severity=Severity.MEDIUM,
    category=Category.POLICY_VIOLATION,
    action=Action.REVIEW_POLICY,
    ops=frozenset({KeyOp.GRANT}),
    runbook="Confirm the custodian change was approved; record it as a ceremony.",
    false_positives="Planned key sharing between application users.",
    covers=("gap:hsm-object-shared",),
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if event.provider is not Provider.HSM or not event.success:
        return None
    key = event.key.uri if event.key else event.account or "-"
    return Hit(
        dedup=f"{key}|{event.details.get('sequence')}", message=f"HSM object shared ({event.operation}) on {key}"
    )


CASES = (
    Case("luna wrap is not a share", (step("luna/luna_cloud_hsm_export.json#4"),), False),
    Case(
        "cloudhsm share",
        (step("cloudhsm/hsm-abc123.log#1", {"text": "CN_GENERATE_KEY (0x17)=>CN_SHARE_OBJECT (0x12)"}),),
        True,
    ),
)
