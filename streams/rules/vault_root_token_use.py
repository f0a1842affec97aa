"""Vault root token used.

Root tokens bypass every policy and should exist only during break-glass; any use of one is worth
a look, and one touching keys or audit devices is an incident until explained.
"""

from ingest.schema import KeyEvent
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step

RULE = Rule(
    id="vault.root_token_use",
    title="Vault root token used",
    severity=Severity.HIGH,
    category=Category.POLICY_VIOLATION,
    action=Action.INVESTIGATE,
    ops=None,
    attack=("T1078",),
    runbook="1. Find who generated the root token and why. 2. Revoke it (vault token revoke). 3. Review "
    "everything it did (kmo query: actor_principal = 'root').",
    false_positives="Initial cluster set-up and documented break-glass.",
    covers=("gap:vault-root-token",),
    dedup_seconds=3600,
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if event.details.get("root_token") is not True:
        return None
    return Hit(dedup=event.account or "root", message=f"root token used: {event.operation}")


CASES = (
    Case("export with the root token", (step("vault/transit_session.log#3"),), True),
    Case("app role", (step("vault/transit_session.log#1"),), False),
)
