"""A key created, used to protect data, and scheduled for destruction within a day.

The ransomware shape with a customer-managed key (Stratus Red Team's Azure blob techniques, and
the same idea on AWS and GCP): create a key, point storage at it so data gets wrapped under it,
then delete the key (and the vault) so the data can no longer be unwrapped until a ransom buys it
back from a backup the attacker kept. Each step is ordinary on its own; the sequence on one key in
hours is not. kmo watches it from the key manager's side: the storage-account writes are not in its
sources, but the key's creation, its use and its deletion are.
"""

from ingest.schema import USAGE_OPS, KeyEvent, KeyOp
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import principal

WITHIN_SECONDS = 86400  # creation to deletion
_DELETE = frozenset({KeyOp.SCHEDULE_DESTROY, KeyOp.DESTROY})

RULE = Rule(
    id="any.key_deleted_soon_after_use",
    title="Key deleted within a day of its creation, after protecting data",
    severity=Severity.HIGH,
    category=Category.POLICY_VIOLATION,
    action=Action.CANCEL_DESTROY,
    ops=frozenset({KeyOp.CREATE, KeyOp.IMPORT}) | USAGE_OPS | _DELETE,
    scope="key",
    attack=("T1486", "T1485"),
    runbook="1. Cancel the deletion or recover the key (soft delete) now. 2. Find what the key protected "
    "(storage accounts, buckets, volumes pointed at it) and who changed them. 3. Revoke the actor.",
    false_positives="Short-lived test keys created, exercised and deleted by a test suite (list its role "
    "in approved_principals or exclude its account).",
    covers=("#42", "#43"),
    dedup_seconds=86400,
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if event.key is None or not event.success:
        return None
    name = f"young-key|{event.key.uri}"
    stamp = event.time.timestamp()
    state = ctx.state.get(name)
    if event.op in (KeyOp.CREATE, KeyOp.IMPORT):
        ctx.state[name] = {"created": stamp, "used": 0, "users": []}
        return None
    if state is None or stamp - state["created"] > WITHIN_SECONDS or stamp < state["created"]:
        return None
    if event.op in USAGE_OPS:
        users = state["users"] if principal(event) in state["users"] else [*state["users"], principal(event)][:8]
        ctx.state[name] = {**state, "used": state["used"] + 1, "users": users}
        return None
    if not state["used"]:
        return None
    hours = (stamp - state["created"]) / 3600
    return Hit(
        dedup=event.key.uri,
        message=f"{principal(event)} {event.operation} {event.key.uri} {hours:.1f} h after it was created; "
        f"it protected data {state['used']} times meanwhile (by {', '.join(state['users'])})",
        details={"hours_since_creation": round(hours, 2), "uses": state["used"]},
    )


_KEY = "https://payments-kv.vault.azure.net/keys/ransom"
_OK = {"resultSignature": "OK", "properties.httpStatusCode": 200, "properties.id": _KEY}


def _az(operation: str, time: str, correlation: str) -> tuple:
    return step("azure/PT1H.json#1", {**_OK, "operationName": operation, "time": time, "correlationId": correlation})


CASES = (
    Case(
        "created, wrapped storage keys, deleted two hours later",
        (
            _az("KeyCreate", "2026-11-20T10:00:00.0000000Z", "a"),
            _az("KeyWrap", "2026-11-20T10:05:00.0000000Z", "b"),
            _az("KeyDelete", "2026-11-20T12:00:00.0000000Z", "c"),
        ),
        True,
    ),
    Case(
        "created and deleted unused",
        (_az("KeyCreate", "2026-11-20T10:00:00.0000000Z", "a"), _az("KeyDelete", "2026-11-20T12:00:00.0000000Z", "c")),
        False,
    ),
    Case(
        "deleted after a month of use",
        (
            _az("KeyCreate", "2026-10-20T10:00:00.0000000Z", "a"),
            _az("KeyWrap", "2026-10-20T10:05:00.0000000Z", "b"),
            _az("KeyDelete", "2026-11-20T12:00:00.0000000Z", "c"),
        ),
        False,
    ),
)
