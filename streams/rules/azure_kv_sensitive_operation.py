"""Sensitive Key Vault operations: vault, key and secret deletion, purge and backup.

Microsoft Sentinel's "Sensitive Azure Key Vault operations" set, on the data-plane AuditEvent names
and on the Activity Log's RBAC actions for the same operations (Panther's purge and delete rules).
"""

from ingest.schema import KeyEvent, Provider
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import azure_operation, principal

_SENSITIVE = frozenset(
    {"VaultDelete", "KeyDelete", "SecretDelete", "SecretPurge", "KeyPurge", "SecretBackup", "KeyBackup"}
    | {
        f"microsoft.keyvault/{action}"
        for action in (
            "vaults/delete",
            "locations/deletedvaults/purge/action",
            "vaults/keys/delete",
            "vaults/keys/purge/action",
            "vaults/keys/backup/action",
            "vaults/secrets/delete",
            "vaults/secrets/purge/action",
            "vaults/secrets/backup/action",
        )
    }
)

RULE = Rule(
    id="azure_kv.sensitive_operation",
    title="Sensitive Key Vault operation",
    severity=Severity.LOW,
    category=Category.POLICY_VIOLATION,
    action=Action.INVESTIGATE,
    ops=None,
    attack=("T1485",),
    runbook="Confirm the operation with its owner; recover soft-deleted objects if unplanned.",
    false_positives="Housekeeping of test vaults.",
    covers=("#2", "#4", "#15", "#34", "#35"),
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if event.provider is not Provider.AZURE_KEYVAULT or not event.success or azure_operation(event) not in _SENSITIVE:
        return None
    target = event.key.uri if event.key else event.details.get("secret_id") or event.details.get("vault", "-")
    return Hit(dedup=f"{target}|{event.operation}", message=f"{principal(event)} {event.operation} {target}")


CASES = (
    Case(
        "KeyPurge that succeeded",
        (step("azure/PT1H.json#1", {"resultSignature": "OK", "properties.httpStatusCode": 200}),),
        True,
    ),
    Case("KeyPurge refused", (step("azure/PT1H.json#1"),), False),
    Case(
        "vault purged (Activity Log)",
        (
            step(
                "azure/activity_diagnostics_removed.json",
                {
                    "operationName": "Microsoft.KeyVault/locations/deletedVaults/purge/action",
                    "resourceId": "/subscriptions/0000aaaa-1111-2222-3333-444455556666/providers/"
                    "Microsoft.KeyVault/locations/westeurope/deletedVaults/payments-kv",
                },
            ),
        ),
        True,
    ),
    Case("KeyUnwrap", (step("azure/PT1H.json#0"),), False),
)
