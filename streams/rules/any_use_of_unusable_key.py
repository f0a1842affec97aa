"""Use of a key that is disabled, pending deletion or destroyed.

Calls that fail because the key cannot be used show impact (what broke when the key was disabled)
or an attacker probing; calls that *succeed* against a key the inventory says is retired mean the
inventory or the key manager is wrong. AWS's own recipe alarms on "pending deletion" errors.
"""

from ingest.schema import USAGE_OPS, KeyEvent
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import principal

_STATE_ERRORS = ("DisabledException", "KMSInvalidStateException", "KeyUnavailableException")
# Error texts that say the key's state refused the call, where the code alone does not: AWS's
# pending-deletion message (its own alarm recipe), Key Vault on disabled, expired or soft-deleted
# keys, Vault transit refusing a ciphertext below the key's min_decryption_version.
_STATE_MESSAGES = (
    "pending deletion",
    "on a disabled key",
    "key is expired",
    "deleted but recoverable state",
    "disallowed by policy (too old)",
)
_RETIRED = frozenset({"inactive", "pending-destruction", "destroyed"})

RULE = Rule(
    id="any.use_of_unusable_key",
    title="Use of a disabled, pending-deletion or destroyed key",
    severity=Severity.MEDIUM,
    category=Category.POLICY_VIOLATION,
    action=Action.INVESTIGATE,
    ops=USAGE_OPS,
    runbook="1. If the key was retired on purpose: find the workload still using it and migrate it. "
    "2. If not: the key's disabling or deletion is the incident; see its lifecycle events.",
    false_positives="Clients retrying for a while after a planned retirement.",
    covers=("gap:use-of-disabled-key", "vendor:aws-pending-deletion-alarm"),
)


def _unusable_error(event: KeyEvent) -> bool:
    code = event.error_code or ""
    text = (event.error_message or "").lower()
    return (
        code in _STATE_ERRORS
        or (code == "FAILED_PRECONDITION" and ("not enabled" in text or "destroy" in text or "disabled" in text))
        or any(marker in text for marker in _STATE_MESSAGES)
    )


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if event.key is None:
        return None
    record = ctx.inventory.get(event.key.uri)
    retired = record is not None and record.status in _RETIRED
    if event.success and not retired:
        return None
    if not event.success and not _unusable_error(event):
        return None
    state = record.status if retired and record is not None else event.error_code
    return Hit(
        dedup=f"{event.key.uri}|{principal(event)}",
        message=f"{principal(event)} tried {event.op} with {event.key.uri} ({state})",
        details={"state": state},
    )


CASES = (
    Case(
        "azure decrypt with a soft-deleted key",
        (
            step(
                "azure/PT1H.json#0",
                {
                    "resultSignature": "Conflict",
                    "properties.httpStatusCode": 409,
                    "resultDescription": "Key db-tde is currently in a deleted but recoverable state.",
                },
            ),
        ),
        True,
    ),
    Case(
        "vault transit decrypt below min_decryption_version",
        (
            step(
                "vault/transit_session.log#1",
                {
                    "request.path": "transit/decrypt/payments",
                    "error": "1 error occurred:\n\t* ciphertext or signature version is disallowed by policy (too old)\n\n",
                },
            ),
        ),
        True,
    ),
    Case(
        "decrypt with a disabled key",
        (
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {"errorCode": "DisabledException", "errorMessage": "key is disabled"},
            ),
        ),
        True,
    ),
    Case(
        "gcp encrypt with a disabled version",
        (
            step(
                "gcp/kms_entries.ndjson#0",
                {"protoPayload.status": {"code": 9, "message": "key is not enabled, current state is: DISABLED."}},
            ),
        ),
        True,
    ),
    Case(
        "access denied is not this",
        (step("cloudtrail/decrypt_assumed_role.json", {"errorCode": "AccessDeniedException"}),),
        False,
    ),
    Case("ordinary decrypt", (step("cloudtrail/decrypt_assumed_role.json"),), False),
)
