"""Key material imported or deleted by a person.

Imported (BYOK) material lives outside AWS's control: importing replaces what a key decrypts with,
and deleting imported material makes the key unusable at once (no pending window).
"""

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import is_service, principal

_NAMES = frozenset({"ImportKeyMaterial", "DeleteImportedKeyMaterial"})

RULE = Rule(
    id="aws_kms.imported_key_material",
    title="KMS key material imported or deleted",
    severity=Severity.MEDIUM,
    category=Category.POLICY_VIOLATION,
    action=Action.INVESTIGATE,
    ops=frozenset({KeyOp.IMPORT, KeyOp.DESTROY}),
    attack=("T1485",),
    runbook="Confirm the key ceremony that should accompany a BYOK import or material deletion.",
    false_positives="Scheduled BYOK rotations (record them as ceremonies to suppress).",
    covers=("#1", "#23"),
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if event.operation not in _NAMES or not event.success or is_service(event):
        return None
    key = event.key.uri if event.key else "-"
    return Hit(dedup=f"{key}|{event.operation}", message=f"{principal(event)} called {event.operation} on {key}")


CASES = (
    Case(
        "ImportKeyMaterial", (step("cloudtrail/decrypt_assumed_role.json", {"eventName": "ImportKeyMaterial"}),), True
    ),
    Case(
        "expired material removed by AWS",
        (step("cloudtrail/rotate_key_service_event.json", {"eventName": "DeleteExpiredKeyMaterial"}),),
        False,
    ),
)
