"""An HSM key's attributes modified, or the HSM's audit logging reconfigured, outside the approved path.

On an HSM the key's attributes are its policy: ``CKA_EXTRACTABLE``, ``CKA_SENSITIVE``,
``CKA_WRAP``/``CKA_UNWRAP`` decide whether the key can ever leave the module or be used to export
others, so a ``LUNA_MODIFY_OBJECT`` or ``CN_MODIFY_OBJECT`` on a key is the HSM's equivalent of a
key-policy edit. Changing the audit configuration (Luna's ``LUNA_LOG_*`` events) decides what the
next attacker leaves behind. No public rule watches HSM logs (gap 13 in
../shared/design/detections.md).
"""

from ingest.schema import KeyEvent, KeyOp, Provider
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import approved, principal

_MODIFY = frozenset({"LUNA_MODIFY_OBJECT", "CN_MODIFY_OBJECT"})

RULE = Rule(
    id="pkcs11.hsm_config_changed",
    title="HSM key attributes or audit configuration changed",
    severity=Severity.MEDIUM,
    category=Category.POLICY_VIOLATION,
    action=Action.INVESTIGATE,
    ops=frozenset({KeyOp.CONFIG_CHANGE, KeyOp.AUDIT_CONFIG}),
    attack=("T1098", "T1562.008"),
    runbook="1. Read the key's attributes now (extractable, sensitive, wrap) and compare with the key "
    "ceremony record. 2. For an audit change, restore the logging configuration and treat the gap as "
    "unmonitored time.",
    false_positives="Key ceremonies and HSM maintenance done by the security officer (list them in "
    "approved_principals).",
    covers=("gap:hsm-key-attributes-and-audit-config",),
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if event.provider is not Provider.HSM or not event.success or approved(event, ctx.policy):
        return None
    action = event.operation
    if event.op is KeyOp.AUDIT_CONFIG:
        what = f"reconfigured HSM audit logging ({action})"
    elif action in _MODIFY:
        what = f"modified the attributes of {event.key.uri if event.key else 'an HSM object'}"
    else:
        return None
    where = event.key.uri if event.key else event.account or "-"
    return Hit(dedup=f"{where}|{action}", message=f"{principal(event)} {what}")


CASES = (
    Case(
        "luna key attributes modified",
        (step("luna/luna_cloud_hsm_export.json#5", {"action": "LUNA_MODIFY_OBJECT"}),),
        True,
    ),
    Case(
        "luna audit configuration changed",
        (step("luna/luna_cloud_hsm_export.json#6", {"action": "LUNA_LOG_CONFIG_SET"}),),
        True,
    ),
    Case(
        "modification refused",
        (
            step(
                "luna/luna_cloud_hsm_export.json#5",
                {"action": "LUNA_MODIFY_OBJECT", "status": "LUNA_RET_USER_NOT_AUTHORIZED"},
            ),
        ),
        False,
    ),
    Case("key generated", (step("luna/luna_cloud_hsm_export.json#1"),), False),
    Case(
        "cloudhsm object modified",
        (step("cloudhsm/hsm-abc123.log#1", {"text": "CN_GENERATE_KEY (0x17)=>CN_MODIFY_OBJECT (0x1b)"}),),
        True,
    ),
)
