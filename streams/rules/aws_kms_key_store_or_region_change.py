"""Where a KMS key lives, changed: a multi-Region key replicated or its primary moved, or a custom
key store (CloudHSM or external XKS) updated, disconnected or deleted, or failing.

A replica is a full copy of the key in another Region, usable there under that Region's policy:
replicating into a Region the organisation does not use is a quiet way to keep a key outside the
controls watched at home. Disconnecting or deleting a custom key store makes every key in it
unusable at once (an outage or an extortion); XKS proxy errors mean the external key manager is
unreachable or refusing. No community rule watches these (gap 11 in ../shared/design/detections.md).
"""

from ingest.schema import USAGE_OPS, KeyEvent, KeyOp
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import approved, is_service, principal

_CHANGES = frozenset(
    {"ReplicateKey", "UpdatePrimaryRegion", "UpdateCustomKeyStore", "DisconnectCustomKeyStore", "DeleteCustomKeyStore"}
)
_STORE_ERRORS = ("XksProxy", "CustomKeyStore", "CloudHsmCluster")

RULE = Rule(
    id="aws_kms.key_store_or_region_change",
    title="KMS key replicated, primary Region moved, or custom key store changed or failing",
    severity=Severity.MEDIUM,
    category=Category.POLICY_VIOLATION,
    action=Action.INVESTIGATE,
    # the changes (ReplicateKey is a create, the rest config changes) and every call an external
    # key store can fail
    ops=USAGE_OPS | {KeyOp.CREATE, KeyOp.CONFIG_CHANGE, KeyOp.DESCRIBE},
    attack=("T1485", "T1578"),
    runbook="1. Confirm the replication or key-store change with the key's owner. 2. For an unplanned "
    "replica, schedule its deletion; for a disconnected store, reconnect it and find who disconnected it. "
    "3. For XKS errors, check the proxy's health and credentials.",
    false_positives="Planned multi-Region roll-outs and key-store maintenance by the platform team.",
    covers=("gap:multi-region-and-key-stores",),
    dedup_seconds=86400,
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if event.service != "kms.amazonaws.com":
        return None
    where = event.key.uri if event.key else event.details.get("custom_key_store") or event.account or "-"
    if not event.success:
        if not any(event.error_code and event.error_code.startswith(p) for p in _STORE_ERRORS):
            return None
        return Hit(
            dedup=f"{where}|{event.error_code}",
            message=f"{event.operation} on {where} failed in its custom key store: {event.error_code}",
        )
    if event.operation not in _CHANGES or is_service(event) or approved(event, ctx.policy):
        return None
    extra = event.details.get("replica_region") or event.details.get("primary_region")
    return Hit(
        dedup=f"{where}|{event.operation}",
        message=f"{principal(event)} {event.operation} {where}" + (f" ({extra})" if extra else ""),
    )


CASES = (
    Case(
        "key replicated to another Region",
        (
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {"eventName": "ReplicateKey", "requestParameters.replicaRegion": "ap-east-1"},
            ),
        ),
        True,
    ),
    Case(
        "custom key store disconnected",
        (
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {
                    "eventName": "DisconnectCustomKeyStore",
                    "resources": None,
                    "requestParameters": {"customKeyStoreId": "cks-1234567890abcdef0"},
                },
            ),
        ),
        True,
    ),
    Case(
        "Decrypt failing at the XKS proxy",
        (step("cloudtrail/decrypt_assumed_role.json", {"errorCode": "XksProxyUriUnreachableException"}),),
        True,
    ),
    Case(
        "Decrypt denied", (step("cloudtrail/decrypt_assumed_role.json", {"errorCode": "AccessDeniedException"}),), False
    ),
    Case(
        "custom key stores listed",
        (step("cloudtrail/decrypt_assumed_role.json", {"eventName": "DescribeCustomKeyStores"}),),
        False,
    ),
)
