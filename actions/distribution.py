"""Key distribution: a key moved to another authorised system wrapped, never in plaintext.

The envelope is the one Vault/OpenBao transit BYOK, AWS KMS (``RSA_AES_KEY_WRAP_SHA_256``),
PKCS#11 (``CKM_RSA_AES_KEY_WRAP``) and Azure BYOK share: a fresh AES-256 key wraps the material
with AES key wrap with padding (RFC 5649), and the target's RSA import key wraps that AES key with
RSA-OAEP (SHA-256, MGF1-SHA-256). The concatenation travels; only the target can open it. Material
is the raw key for AES, PKCS#8 DER for RSA/EC/Ed25519 private keys.

Where the target has a pre-activation state (the local keystore), the key lands there and becomes
usable only through a separate, audited activation. Vault transit has no such state: an imported
transit key is usable at once, and the audit entry says so.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap_with_padding, aes_key_wrap_with_padding

from actions.audit_log import AuditLog
from actions.backends.base import BackendError, KeyInfo, KeySpec

ENVELOPE = "RSA-OAEP-SHA256 wrapping an ephemeral AES-256 key + AES key wrap with padding (RFC 5649)"
_OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


class WrapError(ValueError):
    """An import key that is not RSA, or an envelope that does not open (wrong key, tampered)."""


def wrap(import_key_pem: bytes, material: bytes) -> bytes:
    """``material`` under the target's RSA import key (public, PEM)."""
    try:
        public = serialization.load_pem_public_key(import_key_pem)
    except ValueError as exc:
        raise WrapError(f"the target's import key is not a PEM public key: {exc}") from None
    if not isinstance(public, rsa.RSAPublicKey) or public.key_size < 2048:
        raise WrapError("the target's import key must be RSA of at least 2048 bits")
    ephemeral = secrets.token_bytes(32)
    return public.encrypt(ephemeral, _OAEP) + aes_key_wrap_with_padding(ephemeral, material)


def unwrap(private: rsa.RSAPrivateKey, envelope: bytes) -> bytes:
    """Open an envelope made by :func:`wrap` for ``private``'s public key."""
    head = private.key_size // 8
    try:
        ephemeral = private.decrypt(envelope[:head], _OAEP)
        return aes_key_unwrap_with_padding(ephemeral, envelope[head:])
    except (ValueError, InvalidUnwrap):  # the RSA half raises ValueError, the AES half InvalidUnwrap
        raise WrapError("the envelope does not open with this import key (wrong target or tampered)") from None


class Source(Protocol):
    def describe(self, name: str) -> KeyInfo: ...

    def export_wrapped(self, name: str, import_key_pem: bytes) -> bytes: ...


class Target(Protocol):
    system: Any

    def import_key(self) -> bytes: ...

    def import_wrapped(self, spec: KeySpec, envelope: bytes, *, source: str) -> KeyInfo: ...


def distribute(
    source: Source, name: str, target: Target, target_name: str, audit: AuditLog, actor: str
) -> dict[str, Any]:
    """Move ``name`` from ``source`` to ``target`` as ``target_name``; every step audited."""
    operation_id = str(uuid.uuid4())
    info = source.describe(name)
    base = {
        "operationId": operation_id,
        "operation": "distribute",
        "actor": actor,
        "keyId": info.ref.uri,
        "system": str(target.system),
        "envelope": ENVELOPE,
    }
    audit.append({**base, "outcome": "requested", "target": target_name})
    try:
        envelope = source.export_wrapped(name, target.import_key())
        spec = KeySpec(
            name=target_name, key_type=info.key_type or "data", algorithm=info.algorithm or "", pre_activation=True
        )
        landed = target.import_wrapped(spec, envelope, source=info.ref.uri)
    except (BackendError, WrapError) as exc:
        audit.append({**base, "outcome": "failed", "error": f"{type(exc).__name__}: {exc}"})
        raise
    audit.append(
        {**base, "outcome": "succeeded", "target": landed.ref.uri, "version": info.version, "state": str(landed.state)}
    )
    return {
        "operationId": operation_id,
        "operation": "distribute",
        "from": {"keyId": info.ref.uri, "version": info.version},
        "keyInfo": landed.to_schema(),
        "state": str(landed.state),
        "envelope": ENVELOPE,
    }
