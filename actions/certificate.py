"""Destruction certificates: signed evidence that a key was destroyed, how, and who witnessed it.

The certificate's ``verificationHash`` is the SHA-256 of a canonical form of everything it states
(key id, versions, method, time, the provider's proof, the approvals and the witness, and the
backups on record with how they were accounted for, where there were any); kmo signs
that hash with its own Ed25519 signing key (created on first use, 0600). ``kmo verify-certificate``
recomputes the hash and checks the signature, so a changed field or a forged signature is caught.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_SIGNED_FIELDS = ("keyId", "versions", "destroyedAt", "method", "providerProof", "approvals", "witness")
# signed when present: the backups/exports on record and how they were accounted for
_OPTIONAL_FIELDS = ("backups", "backupsCovered")


def signing_key(home: Path) -> Ed25519PrivateKey:
    """kmo's certificate signing key, created 0600 on first use."""
    path = home / "keys" / "certificate-signing.pem"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def _hash(cert: dict[str, Any]) -> str:
    body = {k: cert.get(k) for k in _SIGNED_FIELDS} | {k: cert[k] for k in _OPTIONAL_FIELDS if k in cert}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def issue(key: Ed25519PrivateKey, fields: dict[str, Any]) -> dict[str, Any]:
    """A signed certificate over ``fields`` (the specification's destructionCertificate, extended)."""
    cert = {k: fields.get(k) for k in _SIGNED_FIELDS} | {
        k: fields[k] for k in _OPTIONAL_FIELDS if fields.get(k) is not None
    }
    cert["verificationHash"] = _hash(cert)
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    cert["signature"] = base64.b64encode(key.sign(cert["verificationHash"].encode())).decode()
    cert["signer"] = base64.b64encode(public).decode()
    return cert


def verify(cert: dict[str, Any], trusted_signer: str | None = None) -> list[str]:
    """Problems with ``cert``; empty when its hash matches its content and kmo's key signed it.

    ``trusted_signer`` is the base64 public key to trust (kmo's own); without it the embedded
    signer is used, which proves integrity but not origin.
    """
    problems = []
    if _hash(cert) != cert.get("verificationHash"):
        problems.append("verificationHash does not match the certificate's content")
    signer = trusted_signer or cert.get("signer", "")
    if trusted_signer and cert.get("signer") != trusted_signer:
        problems.append("signed by a key other than kmo's")
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(signer))
        public.verify(base64.b64decode(cert.get("signature", "")), str(cert.get("verificationHash", "")).encode())
    except (InvalidSignature, ValueError):
        problems.append("signature does not verify")
    return problems


def public_signer(home: Path) -> str:
    public = signing_key(home).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(public).decode()
