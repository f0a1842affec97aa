"""Sensitive Key Vault operations: vault, key and secret deletion, purge and backup.

Microsoft Sentinel's "Sensitive Azure Key Vault operations" set, on the data-plane AuditEvent names.
"""

from ingest.schema import KeyEvent, Provider
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import principal

_SENSITIVE = frozenset(
    {"VaultDelete", "KeyDelete", "SecretDelete", "SecretPurge", "KeyPurge", "SecretBackup", "KeyBackup"}
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
    if event.provider is not Provider.AZURE_KEYVAULT or not event.success or event.operation not in _SENSITIVE:
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
    Case("KeyUnwrap", (step("azure/PT1H.json#0"),), False),
)
