"""The normalised operation vocabulary every parser maps provider operations onto.

Rules read ``event.op`` and never a provider's operation name, so one rule covers CloudTrail's
``Decrypt``, Vault's ``transit/decrypt/<k>``, GCP's ``Decrypt`` and Azure's ``KeyDecrypt``.
Each op also fixes the OCSF class and activity of the event that carries it.
"""

from __future__ import annotations

from enum import StrEnum

from ingest.schema.ocsf import ApiActivity, EntityActivity, EventClass


class KeyOp(StrEnum):
    """What was done to (or with) a key."""

    # usage: the key's material was exercised
    ENCRYPT = "encrypt"
    DECRYPT = "decrypt"
    REENCRYPT = "reencrypt"
    GENERATE_DATA_KEY = "generate_data_key"
    SIGN = "sign"
    VERIFY = "verify"
    MAC = "mac"
    VERIFY_MAC = "verify_mac"
    WRAP = "wrap"
    UNWRAP = "unwrap"
    DERIVE = "derive"
    # lifecycle
    CREATE = "create"
    IMPORT = "import"
    EXPORT = "export"
    BACKUP = "backup"
    RESTORE = "restore"
    ROTATE = "rotate"
    ENABLE = "enable"
    DISABLE = "disable"
    SCHEDULE_DESTROY = "schedule_destroy"
    CANCEL_DESTROY = "cancel_destroy"
    DESTROY = "destroy"
    POLICY_CHANGE = "policy_change"
    GRANT = "grant"
    REVOKE_GRANT = "revoke_grant"
    ROTATION_CONFIG = "rotation_config"
    CONFIG_CHANGE = "config_change"
    ALIAS_CHANGE = "alias_change"
    TAG_CHANGE = "tag_change"
    # secrets and control plane around keys (Vault, Azure Key Vault secrets)
    SECRET_READ = "secret_read"  # noqa: S105 (an operation name, not a secret)
    SECRET_WRITE = "secret_write"  # noqa: S105
    SECRET_DELETE = "secret_delete"  # noqa: S105
    AUDIT_CONFIG = "audit_config"  # an audit device/sink enabled, disabled or changed
    TOKEN_CREATE = "token_create"  # noqa: S105
    LOGIN = "login"
    USER_CHANGE = "user_change"  # HSM users / custodians created, deleted, re-credentialed
    AUDIT_GAP = "audit_gap"  # the audit trail itself is missing records (sequence gap)
    # reads
    DESCRIBE = "describe"
    LIST = "list"
    GET_POLICY = "get_policy"
    RANDOM = "random"
    # anything a parser recognises as key-related but cannot place
    OTHER = "other"

    @property
    def is_usage(self) -> bool:
        """True when the key's material was used (counts towards usage and cryptoperiod limits)."""
        return self in USAGE_OPS

    @property
    def event_class(self) -> EventClass:
        return EventClass.ENTITY_MANAGEMENT if self in _LIFECYCLE else EventClass.API_ACTIVITY

    @property
    def activity_id(self) -> int:
        if self in _LIFECYCLE:
            return int(_LIFECYCLE[self])
        return int(_API.get(self, ApiActivity.OTHER))


# The operations that use a key's material (usage counts, cryptoperiod limits, orphan checks).
USAGE_OPS = frozenset(
    {
        KeyOp.ENCRYPT,
        KeyOp.DECRYPT,
        KeyOp.REENCRYPT,
        KeyOp.GENERATE_DATA_KEY,
        KeyOp.SIGN,
        KeyOp.VERIFY,
        KeyOp.MAC,
        KeyOp.VERIFY_MAC,
        KeyOp.WRAP,
        KeyOp.UNWRAP,
        KeyOp.DERIVE,
    }
)

# Lifecycle ops are Entity Management (3004) events; everything else is API Activity (6003).
_LIFECYCLE: dict[KeyOp, EntityActivity] = {
    KeyOp.CREATE: EntityActivity.CREATE,
    KeyOp.IMPORT: EntityActivity.CREATE,
    KeyOp.RESTORE: EntityActivity.CREATE,
    KeyOp.EXPORT: EntityActivity.READ,
    KeyOp.BACKUP: EntityActivity.READ,
    KeyOp.ROTATE: EntityActivity.UPDATE,
    KeyOp.POLICY_CHANGE: EntityActivity.UPDATE,
    KeyOp.GRANT: EntityActivity.UPDATE,
    KeyOp.REVOKE_GRANT: EntityActivity.UPDATE,
    KeyOp.ROTATION_CONFIG: EntityActivity.UPDATE,
    KeyOp.CONFIG_CHANGE: EntityActivity.UPDATE,
    KeyOp.ALIAS_CHANGE: EntityActivity.UPDATE,
    KeyOp.TAG_CHANGE: EntityActivity.UPDATE,
    KeyOp.ENABLE: EntityActivity.ENABLE,
    KeyOp.DISABLE: EntityActivity.DISABLE,
    KeyOp.SCHEDULE_DESTROY: EntityActivity.DEACTIVATE,
    KeyOp.CANCEL_DESTROY: EntityActivity.ACTIVATE,
    KeyOp.DESTROY: EntityActivity.DELETE,
    KeyOp.AUDIT_CONFIG: EntityActivity.UPDATE,
    KeyOp.TOKEN_CREATE: EntityActivity.CREATE,
    KeyOp.USER_CHANGE: EntityActivity.UPDATE,
}

_API: dict[KeyOp, ApiActivity] = {
    KeyOp.DESCRIBE: ApiActivity.READ,
    KeyOp.LIST: ApiActivity.READ,
    KeyOp.GET_POLICY: ApiActivity.READ,
    KeyOp.SECRET_READ: ApiActivity.READ,
    KeyOp.SECRET_WRITE: ApiActivity.UPDATE,
    KeyOp.SECRET_DELETE: ApiActivity.DELETE,
}
