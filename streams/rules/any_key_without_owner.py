"""Inventory keys with no owner (PCI-DSS 3.6.1.1 and 3.7 need a custodian for every key)."""

from datetime import datetime

from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule

RULE = Rule(
    id="any.key_without_owner",
    title="Key without an owner",
    severity=Severity.LOW,
    category=Category.ORPHANED_KEY,
    action=Action.INVESTIGATE,
    ops=None,
    scope="absence",
    runbook="Assign a custodian in the inventory.",
    false_positives="None.",
    covers=("gap:ownerless-key",),
    dedup_seconds=7 * 86400,
)


def check(now: datetime, ctx: Context) -> list[tuple[Hit, datetime]]:
    return [
        (Hit(dedup=k.uri, message=f"{k.uri} has no owner", keys=[k.uri]), now)
        for k in ctx.inventory.keys.values()
        if not k.owner and k.status != "destroyed"
    ]


CASES = (
    Case(
        "no owner",
        (),
        True,
        now="2026-12-01T00:00:00Z",
        inventory=({"keyId": "transit/keys/a", "keyManagementSystem": "vault", "keyType": "data"},),
    ),
    Case(
        "owned",
        (),
        False,
        now="2026-12-01T00:00:00Z",
        inventory=({"keyId": "transit/keys/a", "keyManagementSystem": "vault", "keyType": "data", "owner": "t"},),
    ),
)
