"""Records missing from an HSM's audit sequence.

CloudHSM numbers audit records without gaps within a reboot; a hole means records were lost in
transit or removed. Whatever happened in the hole is unknown.
"""

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step

RULE = Rule(
    id="any.audit_sequence_gap",
    title="Audit records missing (sequence gap)",
    severity=Severity.HIGH,
    category=Category.POLICY_VIOLATION,
    action=Action.RESTORE_LOGGING,
    ops=frozenset({KeyOp.AUDIT_GAP}),
    attack=("T1070",),
    runbook="1. Fetch the HSM's log stream directly (CloudWatch) for the missing range. 2. If absent there "
    "too, treat the HSM's keys as possibly misused in that window.",
    false_positives="Log delivery delays: the missing records may arrive in a later file.",
    covers=("gap:hsm-audit-sequence",),
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    hsm = event.details.get("hsm", event.account)
    return Hit(dedup=f"{hsm}|{event.details.get('expected_sequence')}", message=event.error_message or "audit gap")


CASES = (
    Case("gap", (step("cloudhsm/hsm-abc123.log"),), True),
    Case("no gap", (step("cloudhsm/hsm-abc123.log#0"),), False),
)
