"""Detection rules: one module each, named explicitly here (grep finds them; nothing registers
itself on import, and a meta-test fails if a module in this folder is missing from the list).

Scopes: ``event`` and ``key`` rules run on the events stream (partitioned by key), ``principal``
rules on a stream keyed by principal, ``absence`` rules on a timer against the inventory.
"""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType

RULE_MODULES = (
    "any_audit_logging_reduced",
    "any_audit_sequence_gap",
    "any_cross_account_use",
    "any_disable_reverted",
    "any_disallowed_algorithm",
    "any_error_burst",
    "any_inventory_weak_algorithm",
    "any_key_deleted_soon_after_use",
    "any_key_destruction_scheduled",
    "any_key_disabled",
    "any_key_export",
    "any_key_without_owner",
    "any_lifecycle_at_unusual_hours",
    "any_new_encryption_context",
    "any_new_network_for_principal",
    "any_new_principal_on_key",
    "any_orphaned_key",
    "any_rotation_overdue",
    "any_secret_mass_read",
    "any_short_pending_window",
    "any_unknown_key",
    "any_usage_over_limit",
    "any_usage_spike",
    "any_use_of_unusable_key",
    "aws_kms_ebs_default_encryption_off",
    "aws_kms_grant_revoke_burst",
    "aws_kms_grant_to_outside_account",
    "aws_kms_imported_key_material",
    "aws_kms_key_policy_changed",
    "aws_kms_key_policy_public",
    "aws_kms_key_store_or_region_change",
    "aws_kms_policy_lockout_bypass",
    "aws_kms_s3_reencrypt_burst",
    "aws_kms_vpce_sensitive_call",
    "azure_kv_object_read_first_time",
    "azure_kv_sensitive_operation",
    "azure_kv_vault_changed",
    "azure_kv_vault_changed_by_new_editor",
    "gcp_kms_human_decrypt",
    "gcp_kms_key_granted_to_storage_agent",
    "gcp_kms_storage_agent_bulk_encrypt",
    "pkcs11_failed_login_burst",
    "pkcs11_hsm_config_changed",
    "pkcs11_object_shared",
    "pkcs11_user_change",
    "vault_acl_policy_changed",
    "vault_root_token_use",
    "vault_seal_or_rekey",
    "vault_transit_key_made_exportable",
)


@cache
def load_rules() -> tuple[ModuleType, ...]:
    """Every rule module, in a stable order."""
    return tuple(importlib.import_module(f"streams.rules.{name}") for name in RULE_MODULES)
