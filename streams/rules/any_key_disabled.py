"""Key disabled outside the approved path.

Disabling a key stops every workload that depends on it (T1485/T1490): a cheap, reversible way to
take a service down, and often the first half of a destruction.
"""

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import approved, is_service, principal

RULE = Rule(
    id="any.key_disabled",
    title="Key disabled outside the approved path",
    severity=Severity.MEDIUM,
    category=Category.POLICY_VIOLATION,
    action=Action.INVESTIGATE,
    ops=frozenset({KeyOp.DISABLE}),
    attack=("T1485", "T1490"),
    runbook="1. Confirm a change ticket. 2. If none, re-enable the key and review the actor's access. "
    "3. Check for a following ScheduleKeyDeletion.",
    false_positives="Incident response disabling a suspected key by hand.",
    covers=("#6", "#13", "#22", "#37", "#38"),
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if not event.success or is_service(event) or approved(event, ctx.policy) or event.key is None:
        return None
    return Hit(dedup=event.key.uri, message=f"{principal(event)} disabled {event.key.uri}")


CASES = (
    Case("aws DisableKey", (step("cloudtrail/decrypt_assumed_role.json", {"eventName": "DisableKey"}),), True),
    Case(
        "failed DisableKey",
        (
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {"eventName": "DisableKey", "errorCode": "AccessDeniedException"},
            ),
        ),
        False,
    ),
    Case(
        "gcp version disabled",
        (
            step(
                "gcp/kms_entries.ndjson#1",
                {
                    "protoPayload.methodName": "UpdateCryptoKeyVersion",
                    "protoPayload.status": {},
                    "protoPayload.request": {"cryptoKeyVersion": {"state": "DISABLED"}},
                },
            ),
        ),
        True,
    ),
    Case(
        "gcp version enabled",
        (
            step(
                "gcp/kms_entries.ndjson#1",
                {
                    "protoPayload.methodName": "UpdateCryptoKeyVersion",
                    "protoPayload.status": {},
                    "protoPayload.request": {"cryptoKeyVersion": {"state": "ENABLED"}},
                },
            ),
        ),
        False,
    ),
)
