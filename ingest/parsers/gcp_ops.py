"""Cloud KMS ``methodName`` (last segment) -> KeyOp. Data, not code."""

from __future__ import annotations

from ingest.schema import KeyOp

GCP_KMS_OPS: dict[str, KeyOp] = {
    "Encrypt": KeyOp.ENCRYPT,
    "Decrypt": KeyOp.DECRYPT,
    "RawEncrypt": KeyOp.ENCRYPT,
    "RawDecrypt": KeyOp.DECRYPT,
    "AsymmetricSign": KeyOp.SIGN,
    "AsymmetricDecrypt": KeyOp.DECRYPT,
    "MacSign": KeyOp.MAC,
    "MacVerify": KeyOp.VERIFY_MAC,
    "Decapsulate": KeyOp.UNWRAP,
    "GenerateRandomBytes": KeyOp.RANDOM,
    "CreateKeyRing": KeyOp.CREATE,
    "CreateCryptoKey": KeyOp.CREATE,
    "CreateCryptoKeyVersion": KeyOp.ROTATE,  # a new version: manual rotation's first half
    "UpdateCryptoKeyPrimaryVersion": KeyOp.ROTATE,
    "ImportCryptoKeyVersion": KeyOp.IMPORT,
    "CreateImportJob": KeyOp.IMPORT,
    "UpdateCryptoKey": KeyOp.CONFIG_CHANGE,  # refined to rotation_config when rotationPeriod changes
    "UpdateCryptoKeyVersion": KeyOp.CONFIG_CHANGE,  # refined to enable/disable from the requested state
    "DestroyCryptoKeyVersion": KeyOp.SCHEDULE_DESTROY,  # DESTROY_SCHEDULED for destroyScheduledDuration
    "RestoreCryptoKeyVersion": KeyOp.CANCEL_DESTROY,
    "SetIamPolicy": KeyOp.POLICY_CHANGE,
    "GetIamPolicy": KeyOp.GET_POLICY,
    "GetKeyRing": KeyOp.DESCRIBE,
    "GetCryptoKey": KeyOp.DESCRIBE,
    "GetCryptoKeyVersion": KeyOp.DESCRIBE,
    "GetPublicKey": KeyOp.DESCRIBE,
    "GetImportJob": KeyOp.DESCRIBE,
    "ListKeyRings": KeyOp.LIST,
    "ListCryptoKeys": KeyOp.LIST,
    "ListCryptoKeyVersions": KeyOp.LIST,
    "ListImportJobs": KeyOp.LIST,
}

# gRPC status codes (google.rpc.Code) by number, for error codes that read like words.
GRPC_CODES = {
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}
