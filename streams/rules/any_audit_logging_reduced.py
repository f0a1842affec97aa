"""A key manager's audit logging switched off or narrowed.

Without the audit trail, every other detection goes blind and unused keys look orphaned: CloudTrail
stopped, deleted or told to exclude KMS events; a Vault audit device removed; GCP Data Access logs
for Cloud KMS turned off; a Key Vault's diagnostic setting deleted.
"""

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import principal

RULE = Rule(
    id="any.audit_logging_reduced",
    title="Key audit logging disabled or narrowed",
    severity=Severity.HIGH,
    category=Category.POLICY_VIOLATION,
    action=Action.RESTORE_LOGGING,
    ops=frozenset({KeyOp.AUDIT_CONFIG}),
    attack=("T1562.008",),
    runbook="1. Restore the logging configuration. 2. Treat the gap as unmonitored time: review key "
    "lifecycle state directly (inventory) for changes made meanwhile.",
    false_positives="Trail migrations that stop one trail after starting another.",
    covers=("gap:audit-device-disabled", "gap:coverage"),
)


def _reduces(event: KeyEvent) -> bool:
    d = event.details
    if d.get("kms_usage_logged") is False:
        return True
    if d.get("vault_operation") == "delete" or d.get("diagnostic_setting_action") == "delete":
        return True
    configs = d.get("audit_configs")
    if isinstance(configs, list):  # GCP: is DATA_READ still logged for Cloud KMS?
        types = {
            c.get("logType")
            for cfg in configs
            if isinstance(cfg, dict)
            for c in cfg.get("auditLogConfigs", [])
            if isinstance(c, dict)
        }
        return "DATA_READ" not in types
    return False


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if not event.success or not _reduces(event):
        return None
    where = event.details.get("trail") or event.details.get("vault") or event.details.get("vault_path") or event.account
    return Hit(
        dedup=f"{event.source}|{where}",
        message=f"{principal(event)} reduced audit logging ({event.operation} on {where})",
    )


CASES = (
    Case("trail excludes KMS", (step("cloudtrail/trail_excludes_kms.json"),), True),
    Case(
        "trail includes KMS",
        (
            step(
                "cloudtrail/trail_excludes_kms.json",
                {"requestParameters.eventSelectors": [{"readWriteType": "All", "includeManagementEvents": True}]},
            ),
        ),
        False,
    ),
    Case("GCP Data Access logs off", (step("gcp/kms_entries.ndjson#2"),), True),
    Case("Key Vault diagnostics removed", (step("azure/activity_diagnostics_removed.json"),), True),
)
