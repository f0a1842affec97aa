"""Vault/OpenBao request paths -> KeyOp. Data, not code.

Transit paths are relative to the engine's mount (``transit/`` by default, any name in practice).
"""

from __future__ import annotations

import re

from ingest.schema import KeyOp

# (pattern over the path below the mount, {request.operation: op}); first match wins.
TRANSIT_PATHS: tuple[tuple[re.Pattern[str], dict[str, KeyOp]], ...] = tuple(
    (re.compile(pattern), ops)
    for pattern, ops in (
        (r"^encrypt/(?P<key>[^/]+)$", {"update": KeyOp.ENCRYPT, "create": KeyOp.ENCRYPT}),
        (r"^decrypt/(?P<key>[^/]+)$", {"update": KeyOp.DECRYPT, "create": KeyOp.DECRYPT}),
        (r"^rewrap/(?P<key>[^/]+)$", {"update": KeyOp.REENCRYPT, "create": KeyOp.REENCRYPT}),
        (r"^datakey/(?:plaintext|wrapped)/(?P<key>[^/]+)(?:/[^/]+)?$", {"update": KeyOp.GENERATE_DATA_KEY}),
        (r"^sign/(?P<key>[^/]+)(?:/[^/]+)?$", {"update": KeyOp.SIGN}),
        (r"^verify/(?P<key>[^/]+)(?:/[^/]+)?$", {"update": KeyOp.VERIFY}),
        (r"^hmac/(?P<key>[^/]+)(?:/[^/]+)?$", {"update": KeyOp.MAC}),
        (r"^keys/(?P<key>[^/]+)/rotate$", {"update": KeyOp.ROTATE}),
        (r"^keys/(?P<key>[^/]+)/config$", {"update": KeyOp.CONFIG_CHANGE}),
        (r"^keys/(?P<key>[^/]+)/trim$", {"update": KeyOp.DESTROY}),
        (r"^keys/(?P<key>[^/]+)/import(?:_version)?$", {"update": KeyOp.IMPORT}),
        (r"^export/[^/]+/(?P<key>[^/]+)(?:/[^/]+)?$", {"read": KeyOp.EXPORT}),
        (r"^backup/(?P<key>[^/]+)$", {"read": KeyOp.BACKUP}),
        (r"^restore(?:/(?P<key>[^/]+))?$", {"update": KeyOp.RESTORE}),
        (
            r"^keys/(?P<key>[^/]+)$",
            {"update": KeyOp.CREATE, "create": KeyOp.CREATE, "delete": KeyOp.DESTROY, "read": KeyOp.DESCRIBE},
        ),
        (r"^keys/?$", {"list": KeyOp.LIST, "read": KeyOp.LIST}),
        (r"^random(?:/.*)?$", {"update": KeyOp.RANDOM}),
    )
)

KV_OPS = {
    "read": KeyOp.SECRET_READ,
    "create": KeyOp.SECRET_WRITE,
    "update": KeyOp.SECRET_WRITE,
    "delete": KeyOp.SECRET_DELETE,
    "list": KeyOp.LIST,
    "patch": KeyOp.SECRET_WRITE,
}

# KMIP (Vault Enterprise KMIP engine) Operation enumeration -> KeyOp (KMIP 1.x spec, section 9.1.3.2.27)
KMIP_OPS = {
    0x01: KeyOp.CREATE,
    0x02: KeyOp.CREATE,
    0x03: KeyOp.IMPORT,
    0x04: KeyOp.ROTATE,
    0x08: KeyOp.LIST,
    0x0A: KeyOp.EXPORT,
    0x0B: KeyOp.DESCRIBE,
    0x0C: KeyOp.DESCRIBE,
    0x12: KeyOp.ENABLE,
    0x13: KeyOp.DISABLE,
    0x14: KeyOp.DESTROY,
    0x1F: KeyOp.ENCRYPT,
    0x20: KeyOp.DECRYPT,
    0x21: KeyOp.SIGN,
    0x22: KeyOp.VERIFY,
    0x23: KeyOp.MAC,
    0x24: KeyOp.VERIFY_MAC,
    0x1E: KeyOp.OTHER,
    0x18: KeyOp.OTHER,
}
KMIP_NAMES = {
    0x01: "Create",
    0x02: "CreateKeyPair",
    0x03: "Register",
    0x04: "ReKey",
    0x08: "Locate",
    0x0A: "Get",
    0x0B: "GetAttributes",
    0x0C: "GetAttributeList",
    0x12: "Activate",
    0x13: "Revoke",
    0x14: "Destroy",
    0x18: "Query",
    0x1E: "DiscoverVersions",
    0x1F: "Encrypt",
    0x20: "Decrypt",
    0x21: "Sign",
    0x22: "SignatureVerify",
    0x23: "MAC",
    0x24: "MACVerify",
}

# Vault's own keys and seal, by request path prefix under sys/: what each call does to them. Sealing
# stops every client; rekeying replaces the unseal (or recovery) key shares; generate-root mints a
# root token from key shares; rotate replaces the barrier key that encrypts all of Vault's storage.
SYS_KEY_CONTROL: tuple[tuple[str, str], ...] = (
    ("sys/seal", "seal"),
    ("sys/unseal", "unseal"),
    ("sys/step-down", "step-down"),
    ("sys/rekey-recovery-key/", "rekey-recovery-key"),
    ("sys/rekey/", "rekey"),
    ("sys/generate-root/", "generate-root"),
    ("sys/generate-recovery-token/", "generate-recovery-token"),
    ("sys/rotate/config", "rotate-config"),
    ("sys/rotate", "rotate-barrier-key"),
)
