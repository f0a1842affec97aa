"""Key custodians bound to signing keys, custodian changes, and key ceremonies.

A name typed on a command line proves nothing. Once any custodian is registered, each one is an
Ed25519 public key in ``$KMO_HOME/actions/custodians.json``, and what a custodian approves or attests
(a destruction, a change to the custodian list, a key ceremony) must carry their signature over a
canonical statement that names exactly what is approved. So:

* one person cannot play two custodians (each approval verifies under a different registered key);
* an approval cannot be replayed onto another proposal (the statement names the proposal id);
* a forged approval fails verification.

The private keys stay with the custodians (``kmo custodian keygen`` writes one to a 0600 file on
their machine); kmo stores public keys only. Changes to the list after the first two custodians
need the signature of a custodian already on it, and every change is a hash-chained audit entry.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from actions.audit_log import AuditLog
from actions.private_files import write_private
from ingest.schema import format_timestamp

MIN_CUSTODIANS = 2  # dual control needs two approvers besides the proposer


class CustodianRefused(Exception):
    """A signature, a custodian or a change the registry does not accept; the message says which."""


def statement(kind: str, **fields: Any) -> bytes:
    """The canonical bytes a custodian signs: sorted keys, no whitespace, a ``kind`` so a signature
    for one purpose never verifies for another."""
    return json.dumps({"kind": kind, **fields}, sort_keys=True, separators=(",", ":")).encode()


def keygen(path: Path) -> str:
    """A new custodian signing key, written 0600 to ``path``; returns the public key (base64) to register."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_private(path, pem)
    return public_key_text(key)


def public_key_text(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def sign(key_file: Path, message: bytes) -> str:
    """Sign ``message`` with the custodian key in ``key_file``; the signature as base64."""
    try:
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise CustodianRefused(f"cannot read the signing key {key_file}: {type(exc).__name__}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CustodianRefused(f"{key_file} is not an Ed25519 key")
    return base64.b64encode(key.sign(message)).decode()


@dataclass(frozen=True)
class Signed:
    """A custodian's name and their signature (base64) over a statement."""

    custodian: str
    signature: str


class CustodianRegistry:
    def __init__(self, home: Path, audit: AuditLog) -> None:
        self.path = home / "actions" / "custodians.json"
        self.audit = audit

    def load(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        return json.loads(self.path.read_text())["custodians"]

    def _save(self, custodians: dict[str, dict[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(self.path, json.dumps({"custodians": custodians}, indent=2, sort_keys=True).encode())

    @property
    def enforcing(self) -> bool:
        """Signatures are required as soon as one custodian is registered."""
        return bool(self.load())

    def verify(self, signed: Signed, message: bytes) -> None:
        """Raise unless ``signed.custodian`` is registered and the signature verifies over ``message``."""
        entry = self.load().get(signed.custodian)
        if entry is None:
            raise CustodianRefused(f"{signed.custodian!r} is not a registered custodian")
        try:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(entry["publicKey"]))
            key.verify(base64.b64decode(signed.signature, validate=True), message)
        except (InvalidSignature, ValueError):
            raise CustodianRefused(f"the signature of {signed.custodian!r} does not verify") from None

    def change_statement(self, change: str, name: str, public_key: str | None) -> bytes:
        return statement("kmo-custodian-change", change=change, name=name, publicKey=public_key)

    def add(self, name: str, public_key: str, actor: str, endorsement: Signed | None = None) -> dict[str, Any]:
        """Register ``name``. The first two need no endorsement (there is no one to endorse them);
        later ones need a registered custodian's signature over the change."""
        custodians = self.load()
        if name in custodians:
            raise CustodianRefused(f"{name!r} is already a custodian")
        try:
            Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))
        except ValueError:
            raise CustodianRefused("the public key is not a base64 Ed25519 public key") from None
        if any(entry["publicKey"] == public_key for entry in custodians.values()):
            raise CustodianRefused("that key already belongs to another custodian (one person, one custodian)")
        if len(custodians) >= MIN_CUSTODIANS:
            self._endorsed(endorsement, self.change_statement("add", name, public_key), exclude=name)
        custodians[name] = {"publicKey": public_key, "addedAt": format_timestamp(datetime.now(UTC)), "addedBy": actor}
        self._save(custodians)
        return self.audit.append(self._entry("add", name, actor, endorsement, public_key))

    def remove(self, name: str, actor: str, endorsement: Signed | None) -> dict[str, Any]:
        """Remove ``name``, endorsed by another custodian; never below two custodians."""
        custodians = self.load()
        if name not in custodians:
            raise CustodianRefused(f"{name!r} is not a custodian")
        if len(custodians) <= MIN_CUSTODIANS:
            raise CustodianRefused(f"dual control needs at least {MIN_CUSTODIANS} custodians; add one first")
        self._endorsed(endorsement, self.change_statement("remove", name, None), exclude=name)
        del custodians[name]
        self._save(custodians)
        return self.audit.append(self._entry("remove", name, actor, endorsement, None))

    def _endorsed(self, endorsement: Signed | None, message: bytes, *, exclude: str) -> None:
        if endorsement is None:
            raise CustodianRefused("changing the custodians needs the signature of a custodian already registered")
        if endorsement.custodian == exclude:
            raise CustodianRefused("a custodian cannot endorse a change to themselves")
        self.verify(endorsement, message)

    @staticmethod
    def _entry(change: str, name: str, actor: str, endorsement: Signed | None, key: str | None) -> dict[str, Any]:
        entry: dict[str, Any] = {"operation": "custodian-change", "change": change, "custodian": name, "actor": actor}
        if key:
            entry["publicKey"] = key
        if endorsement:
            entry["endorsedBy"] = {"custodian": endorsement.custodian, "signature": endorsement.signature}
        return entry | {"outcome": "succeeded"}

    def record_ceremony(
        self, key_id: str, action: str, present: list[str], signatures: list[Signed], actor: str
    ) -> dict[str, Any]:
        """A key ceremony (a generation in an HSM, a key split, a backup restore): who was present,
        what was done, and each present custodian's signature over that statement. At least two
        registered custodians must sign; everyone who signs must be listed as present."""
        message = statement("kmo-key-ceremony", keyId=key_id, action=action, present=sorted(present))
        signers = [s.custodian for s in signatures]
        if len(set(signers)) < MIN_CUSTODIANS:
            raise CustodianRefused(f"a ceremony needs the signatures of {MIN_CUSTODIANS} different custodians")
        if not set(signers) <= set(present):
            raise CustodianRefused("everyone who signs a ceremony must be listed as present")
        for signed in signatures:
            self.verify(signed, message)
        return self.audit.append(
            {
                "operation": "key-ceremony",
                "outcome": "succeeded",
                "actor": actor,
                "keyId": key_id,
                "action": action,
                "present": sorted(present),
                "signatures": [{"custodian": s.custodian, "signature": s.signature} for s in signatures],
            }
        )
