"""Keys used in the logs that no inventory knows.

An uninventoried key is unmanaged: nobody rotates it, nobody owns it, nobody will destroy it.
Only judged when an inventory is given.
"""

from datetime import datetime

from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step

RULE = Rule(
    id="any.unknown_key",
    title="Key in use that the inventory does not know",
    severity=Severity.LOW,
    category=Category.ORPHANED_KEY,
    action=Action.INVESTIGATE,
    ops=None,
    scope="absence",
    runbook="Find the owner from the principals using it (kmo query key_principals) and add it to the inventory.",
    false_positives="AWS-managed keys (aws/…) and keys of accounts outside the inventory's scope.",
    covers=("gap:unknown-key",),
    dedup_seconds=7 * 86400,
)


def check(now: datetime, ctx: Context) -> list[tuple[Hit, datetime]]:
    if len(ctx.inventory) == 0:
        return []
    seen = sorted(k.split("|", 1)[1] for k in ctx.state if k.startswith("seen|"))
    return [
        (Hit(dedup=uri, message=f"{uri} is used but not in the inventory", keys=[uri]), now)
        for uri in seen
        if uri not in ctx.inventory
    ]


_INV = ({"keyId": "transit/keys/orders", "keyManagementSystem": "vault", "keyType": "data", "owner": "t"},)
CASES = (
    Case(
        "payments key used, only orders inventoried",
        (step("vault/transit_session.log#1"),),
        True,
        inventory=_INV,
        now="2026-11-21T00:00:00Z",
    ),
    Case(
        "inventoried key",
        (step("vault/transit_session.log#1"),),
        False,
        now="2026-11-21T00:00:00Z",
        inventory=(
            {"keyId": "transit/keys/payments", "keyManagementSystem": "vault", "keyType": "data", "owner": "t"},
        ),
    ),
)
