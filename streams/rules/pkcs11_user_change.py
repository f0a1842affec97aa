"""HSM users or officers created, deleted or re-credentialed: a change of custodians.

On an HSM, whoever holds a crypto-officer or crypto-user credential controls the keys; PCI-DSS 3.6
and 3.7 want custodian changes recorded and approved.
"""

from ingest.schema import KeyEvent, KeyOp, Provider
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step

RULE = Rule(
    id="pkcs11.user_change",
    title="HSM user or officer changed",
    severity=Severity.MEDIUM,
    category=Category.POLICY_VIOLATION,
    action=Action.REVIEW_POLICY,
    ops=frozenset({KeyOp.USER_CHANGE}),
    attack=("T1136", "T1098"),
    runbook="Match the change to a recorded key ceremony or custodian change; if none, review who holds officer credentials.",
    false_positives="Planned custodian rotation (record it as a ceremony).",
    covers=("gap:hsm-user-management",),
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if event.provider is not Provider.HSM or not event.success:
        return None
    target = event.details.get("target_user") or event.actor.principal or "-"
    return Hit(
        dedup=f"{event.account}|{event.operation}|{target}",
        message=f"{event.operation} for {target} on {event.account}",
    )


CASES = (
    Case(
        "crypto officer created",
        (step("cloudhsm/hsm-abc123.log#0", {"text": "CN_LOGIN (0xd)=>CN_CREATE_CO (0x4)"}),),
        True,
    ),
    Case("login", (step("cloudhsm/hsm-abc123.log#0"),), False),
)
