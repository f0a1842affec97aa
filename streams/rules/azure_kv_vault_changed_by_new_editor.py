"""A Key Vault changed by someone who has not changed a vault for two weeks (or ever).

Vault administration is done by few people and pipelines; a new name among them is either a new
colleague or a stolen identity. Elastic's "new terms" rule keeps the editors of the last 14 days;
kmo keeps, per principal, when it last changed a vault (state on the principal's partition), in
event time. A principal's vault changes within one subscription and Region share a partition of the
events topic and reach the rule in order, so stream and replay agree on them; changes in several
subscriptions can interleave, and one processed before an earlier one may fire where replay would not.
"""

from ingest.schema import KeyEvent
from streams.findings import Action, AnalyticType, Category, Severity
from streams.rules.azure_kv_vault_changed import VAULT_CHANGE_OPS, is_vault_change
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import principal

QUIET_SECONDS = 14 * 86400  # Elastic's history window for "new terms"

RULE = Rule(
    id="azure_kv.vault_changed_by_new_editor",
    title="Key Vault changed by a principal new to vault administration",
    severity=Severity.MEDIUM,
    category=Category.ANOMALOUS_USAGE,
    action=Action.INVESTIGATE,
    ops=VAULT_CHANGE_OPS,
    scope="principal",
    attack=("T1078", "T1098"),
    runbook="1. Confirm the person or pipeline is meant to administer vaults. 2. If not, revert the "
    "change and disable the identity's sessions.",
    false_positives="A new administrator's first change; a pipeline's first run after a rename.",
    covers=("#28",),
    dedup_seconds=86400,
    analytic=AnalyticType.STATISTICAL,
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if not is_vault_change(event):
        return None
    name = f"vault-editor|{principal(event)}"
    stamp = event.time.timestamp()
    edits = sorted({*(ctx.state.get(name) or []), stamp})[-16:]  # recent edit times, event time
    ctx.state[name] = edits
    before = [t for t in edits if t < stamp]
    if before and stamp - before[-1] <= QUIET_SECONDS:
        return None
    vault = event.details.get("vault", "-")
    return Hit(
        dedup=principal(event),
        message=f"{principal(event)} changed vault {vault}, its first vault change in 14 days",
        keys=[],
    )


_PATCH = {
    "operationName": "VaultPatch",
    "properties.httpStatusCode": 200,
    "resultSignature": "OK",
    "properties.id": None,
}

CASES = (
    Case("first vault change", (step("azure/PT1H.json#1", _PATCH),), True),
    Case(
        "a returning editor after three weeks away",
        (
            step("azure/PT1H.json#1", {**_PATCH, "time": "2026-10-20T10:00:00.0000000Z"}),
            step("azure/PT1H.json#1", {**_PATCH, "time": "2026-11-20T10:00:00.0000000Z", "correlationId": "b"}),
        ),
        True,
    ),
    Case(
        "a change that was refused",
        (step("azure/PT1H.json#1", {"operationName": "VaultPatch", "properties.id": None}),),
        False,
    ),
    Case("a key read", (step("azure/PT1H.json#0"),), False),
)
