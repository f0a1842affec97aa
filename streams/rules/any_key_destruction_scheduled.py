"""Key destruction scheduled or performed outside the approved path.

Destroying key material makes everything encrypted under it unreadable: sabotage (T1485, ransomware
with a victim's keys) or an accident. Either needs a human within the pending window, when the
destruction can still be cancelled. Provider-side completions (AWS DeleteKey at the end of the
window, an AWSService event) are the scheduled outcome, not a new decision, and do not fire.
"""

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import approved, is_service, principal

RULE = Rule(
    id="any.key_destruction_scheduled",
    title="Key scheduled for destruction outside the approved path",
    severity=Severity.HIGH,
    category=Category.POLICY_VIOLATION,
    action=Action.CANCEL_DESTROY,
    ops=frozenset({KeyOp.SCHEDULE_DESTROY, KeyOp.DESTROY}),
    attack=("T1485",),
    runbook="1. Find the change ticket for this key. 2. If none: cancel the deletion now (AWS CancelKeyDeletion, "
    "GCP RestoreCryptoKeyVersion, Azure recover) and disable the actor's credentials. 3. Review the actor's "
    "other key operations in the last 24 hours.",
    false_positives="Planned decommissioning done by hand; CI tearing down ephemeral keys.",
    covers=("#6", "#13", "#17", "#18", "#22", "#34", "#35", "#37"),
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if not event.success or is_service(event) or approved(event, ctx.policy):
        return None
    key = event.key.uri if event.key else event.details.get("vault", "-")
    return Hit(dedup=f"{key}", message=f"{principal(event)} {event.operation} on {key}")


CASES = (
    Case(
        "aws ScheduleKeyDeletion",
        (step("cloudtrail/schedule_deletion_denied_alias.json", {"errorCode": None, "errorMessage": None}),),
        True,
    ),
    Case("denied call does not fire", (step("cloudtrail/schedule_deletion_denied_alias.json"),), False),
    Case(
        "AWS deleting at the end of the window does not fire",
        (step("cloudtrail/rotate_key_service_event.json", {"eventName": "DeleteKey"}),),
        False,
    ),
    Case(
        "gcp DestroyCryptoKeyVersion by a person",
        (step("gcp/kms_entries.ndjson#1", {"protoPayload.status": {}}),),
        True,
    ),
    Case("decrypt does not fire", (step("cloudtrail/decrypt_assumed_role.json"),), False),
)
