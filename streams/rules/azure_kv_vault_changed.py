"""A Key Vault itself changed: created or updated, its access policies rewritten, deployed to, or
deleted, outside the approved path.

The vault's configuration decides who can reach every key and secret in it (access policies,
network rules, soft-delete and purge protection). Sigma flags every such change; kmo lets the
approved principals through, so a finding means someone changed the vault by hand. Deletion also
raises ``azure_kv.sensitive_operation``.
"""

from ingest.schema import KeyEvent, KeyOp, Provider
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import approved, azure_operation, principal

# AuditEvent names and Activity Log RBAC actions (lower-cased) that change a vault.
VAULT_CHANGES = frozenset(
    {
        "VaultPut",
        "VaultPatch",
        "VaultDelete",
        "VaultAccessPolicyChangedEventGridNotification",
        "microsoft.keyvault/vaults/write",
        "microsoft.keyvault/vaults/delete",
        "microsoft.keyvault/vaults/deploy/action",
        "microsoft.keyvault/vaults/accesspolicies/write",
    }
)

# what the parser maps those names to (deploy/action has no op of its own)
VAULT_CHANGE_OPS = frozenset({KeyOp.CONFIG_CHANGE, KeyOp.POLICY_CHANGE, KeyOp.DESTROY, KeyOp.OTHER})

RULE = Rule(
    id="azure_kv.vault_changed",
    title="Key Vault configuration changed outside the approved path",
    severity=Severity.LOW,
    category=Category.POLICY_VIOLATION,
    action=Action.REVIEW_POLICY,
    ops=VAULT_CHANGE_OPS,
    attack=("T1098", "T1485"),
    runbook="1. Compare the vault's access policies, network rules and purge protection with the last "
    "approved state. 2. Revert what nobody asked for.",
    false_positives="Deployment pipelines not listed in approved_principals.",
    covers=("#3",),
    dedup_seconds=86400,
)


def is_vault_change(event: KeyEvent) -> bool:
    """A successful change to a vault (not to one of its keys or secrets)."""
    if event.provider is not Provider.AZURE_KEYVAULT or not event.success:
        return False
    return azure_operation(event) in VAULT_CHANGES


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if not is_vault_change(event) or approved(event, ctx.policy):
        return None
    vault = event.details.get("vault", "-")
    return Hit(
        dedup=f"{vault}|{principal(event)}", message=f"{principal(event)} changed vault {vault} ({event.operation})"
    )


CASES = (
    Case(
        "VaultPatch by a user",
        (
            step(
                "azure/PT1H.json#1",
                {
                    "operationName": "VaultPatch",
                    "properties.httpStatusCode": 200,
                    "resultSignature": "OK",
                    "properties.id": None,
                },
            ),
        ),
        True,
    ),
    Case(
        "access policies rewritten (Activity Log)",
        (
            step(
                "azure/activity_diagnostics_removed.json",
                {
                    "operationName": "MICROSOFT.KEYVAULT/VAULTS/ACCESSPOLICIES/WRITE",
                    "resourceId": "/SUBSCRIPTIONS/0000AAAA-1111-2222-3333-444455556666/RESOURCEGROUPS/PAYMENTS-RG/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/PAYMENTS-KV",
                },
            ),
        ),
        True,
    ),
    Case(
        "VaultPatch refused",
        (step("azure/PT1H.json#1", {"operationName": "VaultPatch", "properties.id": None}),),
        False,
    ),
    Case(
        "VaultGet",
        (
            step(
                "azure/PT1H.json#1",
                {
                    "operationName": "VaultGet",
                    "properties.httpStatusCode": 200,
                    "resultSignature": "OK",
                    "properties.id": None,
                },
            ),
        ),
        False,
    ),
)
