"""CloudTrail ``eventName`` (eventSource ``kms.amazonaws.com``) -> KeyOp. Data, not code.

An eventName missing here still becomes an event, with ``op = other`` and its name kept in
``operation``; the conformance test lists which names in the corpus fall through.
"""

from __future__ import annotations

from ingest.schema import KeyOp

CLOUDTRAIL_KMS_OPS: dict[str, KeyOp] = {
    # usage
    "Encrypt": KeyOp.ENCRYPT,
    "Decrypt": KeyOp.DECRYPT,
    "ReEncrypt": KeyOp.REENCRYPT,
    "GenerateDataKey": KeyOp.GENERATE_DATA_KEY,
    "GenerateDataKeyWithoutPlaintext": KeyOp.GENERATE_DATA_KEY,
    "GenerateDataKeyPair": KeyOp.GENERATE_DATA_KEY,
    "GenerateDataKeyPairWithoutPlaintext": KeyOp.GENERATE_DATA_KEY,
    "Sign": KeyOp.SIGN,
    "Verify": KeyOp.VERIFY,
    "GenerateMac": KeyOp.MAC,
    "VerifyMac": KeyOp.VERIFY_MAC,
    "DeriveSharedSecret": KeyOp.DERIVE,
    # lifecycle
    "CreateKey": KeyOp.CREATE,
    "ReplicateKey": KeyOp.CREATE,
    "ImportKeyMaterial": KeyOp.IMPORT,
    "GetParametersForImport": KeyOp.IMPORT,
    "DeleteImportedKeyMaterial": KeyOp.DESTROY,
    "DeleteExpiredKeyMaterial": KeyOp.DESTROY,
    "RotateKey": KeyOp.ROTATE,
    "RotateKeyOnDemand": KeyOp.ROTATE,
    "EnableKeyRotation": KeyOp.ROTATION_CONFIG,
    "DisableKeyRotation": KeyOp.ROTATION_CONFIG,
    "EnableKey": KeyOp.ENABLE,
    "DisableKey": KeyOp.DISABLE,
    "ScheduleKeyDeletion": KeyOp.SCHEDULE_DESTROY,
    "CancelKeyDeletion": KeyOp.CANCEL_DESTROY,
    "DeleteKey": KeyOp.DESTROY,
    "PutKeyPolicy": KeyOp.POLICY_CHANGE,
    "CreateGrant": KeyOp.GRANT,
    "RetireGrant": KeyOp.REVOKE_GRANT,
    "RevokeGrant": KeyOp.REVOKE_GRANT,
    "UpdateKeyDescription": KeyOp.CONFIG_CHANGE,
    "UpdatePrimaryRegion": KeyOp.CONFIG_CHANGE,
    "SynchronizeMultiRegionKey": KeyOp.CONFIG_CHANGE,
    "CreateAlias": KeyOp.ALIAS_CHANGE,
    "UpdateAlias": KeyOp.ALIAS_CHANGE,
    "DeleteAlias": KeyOp.ALIAS_CHANGE,
    "TagResource": KeyOp.TAG_CHANGE,
    "UntagResource": KeyOp.TAG_CHANGE,
    "CreateCustomKeyStore": KeyOp.CONFIG_CHANGE,
    "UpdateCustomKeyStore": KeyOp.CONFIG_CHANGE,
    "DeleteCustomKeyStore": KeyOp.CONFIG_CHANGE,
    "ConnectCustomKeyStore": KeyOp.CONFIG_CHANGE,
    "DisconnectCustomKeyStore": KeyOp.CONFIG_CHANGE,
    # reads
    "DescribeKey": KeyOp.DESCRIBE,
    "GetPublicKey": KeyOp.DESCRIBE,
    "GetKeyRotationStatus": KeyOp.DESCRIBE,
    "DescribeCustomKeyStores": KeyOp.DESCRIBE,
    "ListKeys": KeyOp.LIST,
    "ListAliases": KeyOp.LIST,
    "ListGrants": KeyOp.LIST,
    "ListRetirableGrants": KeyOp.LIST,
    "ListKeyPolicies": KeyOp.LIST,
    "ListKeyRotations": KeyOp.LIST,
    "ListResourceTags": KeyOp.LIST,
    "GetKeyPolicy": KeyOp.GET_POLICY,
    "GenerateRandom": KeyOp.RANDOM,
}
