"""Key material exported, backed up or extracted.

Any copy of key material outside its key manager is a copy the manager no longer controls: Vault
transit export and plaintext backup, CloudHSM masked-object extraction and key wrapping, Luna
cloning and wrapping, Azure key release and backups, KMIP Get.
"""

from ingest.schema import KeyEvent, KeyOp, Provider
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import approved, principal

RULE = Rule(
    id="any.key_export",
    title="Key material exported or backed up",
    severity=Severity.HIGH,
    category=Category.POLICY_VIOLATION,
    action=Action.ROTATE,
    ops=frozenset({KeyOp.EXPORT, KeyOp.BACKUP, KeyOp.WRAP}),
    attack=("T1552.004",),
    runbook="1. Confirm a backup or migration ceremony. 2. If none: treat the key as compromised, rotate it "
    "and re-encrypt what it protects.",
    false_positives="Scheduled HSM-to-HSM backups (run them through the orchestrator to suppress).",
    covers=("gap:transit-export-backup", "gap:hsm-key-export"),
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if not event.success or approved(event, ctx.policy):
        return None
    if event.op is KeyOp.WRAP and event.provider is not Provider.HSM:
        return None  # cloud KMS "wrap" is a data operation; on an HSM it takes a key out of the token
    key = event.key.uri if event.key else event.operation
    return Hit(dedup=key, message=f"{principal(event)} {event.operation} ({event.op}) on {key}")


CASES = (
    Case("vault transit export by root", (step("vault/transit_session.log#3"),), True),
    Case("vault encrypt", (step("vault/transit_session.log#1"),), False),
    Case("HSM key wrapped out of the token", (step("luna/luna_cloud_hsm_export.json#4"),), True),
)
