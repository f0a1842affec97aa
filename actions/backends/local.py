"""kmo's own software keystore, for development and for systems without a KMS.

* Key material comes from the operating system's CSPRNG (``secrets``/``os.urandom``) or, for key
  pairs, ``cryptography``'s generators (which use it too).
* Every version's material is encrypted at rest with AES-256-GCM under a master key, bound (AAD) to
  the key's name and version, so a version file cannot be swapped for another's.
* Files are 0600 in a 0700 directory, written atomically (temp file + rename), never in place.
* Destroyed keys keep a tombstone (name, versions, when) and no material.

Not thread-safe; one orchestrator process per keystore directory.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from actions.backends.base import (
    ALGORITHMS,
    BackendError,
    Capability,
    InvalidKeyState,
    KeyInfo,
    KeyNotFound,
    KeySpec,
    KeyState,
    Unsupported,
    check_transition,
)
from actions.derivation import KDFS, derive_material
from actions.distribution import WrapError, unwrap, wrap
from actions.private_files import write_private
from ingest.schema import KeyRef, Provider, format_timestamp, parse_timestamp

_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
# A key is one file, ``<name>.json``: file names stop at 255 bytes on every filesystem we run on.
_NAME_MAX = 200
GENERATION = {
    "entropy_source": "os.urandom (kernel CSPRNG)",
    "module": "pyca/cryptography (OpenSSL)",
    "fips_validation": "not FIPS-validated as configured",
}


def _check_material(spec: KeySpec, material: bytes) -> None:
    """Imported material must be what the spec says (an AES key of the right length, or a PKCS#8
    private key of the right family and size), so a mislabelled key is refused, not stored."""
    family, size = ALGORITHMS[spec.algorithm]
    ok = False
    if family == "aes":
        ok = len(material) * 8 == size
    else:
        try:
            key = serialization.load_der_private_key(material, password=None)
        except ValueError:
            key = None
        if family == "rsa":
            ok = isinstance(key, rsa.RSAPrivateKey) and key.key_size == size
        elif family == "ec":
            ok = isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size == size
        else:
            ok = isinstance(key, ed25519.Ed25519PrivateKey)
    if not ok:
        raise InvalidKeyState("local", "import", spec.name, f"the imported material is not an {spec.algorithm} key")


def _material(algorithm: str) -> bytes:
    family, size = ALGORITHMS[algorithm]
    if family == "aes":
        return secrets.token_bytes(size // 8)
    if family == "rsa":
        key: Any = rsa.generate_private_key(public_exponent=65537, key_size=size)
    elif family == "ec":
        key = ec.generate_private_key(ec.SECP256R1() if size == 256 else ec.SECP384R1())
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class LocalKeystore:
    """The ``local`` backend: a directory of encrypted, versioned key files."""

    system: ClassVar[Provider] = Provider.LOCAL
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    algorithms: ClassVar[frozenset[str]] = frozenset(ALGORITHMS)
    generation: ClassVar[dict[str, str]] = {k: GENERATION[k] for k in ("entropy_source", "module")}
    holds_labels: ClassVar[bool] = True

    def __init__(self, directory: Path, *, rollback_window: timedelta = timedelta(days=7)) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.dir, 0o700)
        self.rollback_window = rollback_window
        master = self.dir / "master.key"
        if not master.exists():
            write_private(master, secrets.token_bytes(32))
        self._aead = AESGCM(master.read_bytes())

    # -- storage -----------------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        if not name or not set(name) <= _NAME_OK or name.startswith("."):
            raise KeyNotFound("local", "lookup", name, "key names use letters, digits, '-', '_' and '.' only")
        if len(name) > _NAME_MAX:
            raise KeyNotFound("local", "lookup", name[:40] + "...", f"key names are at most {_NAME_MAX} characters")
        return self.dir / f"{name}.json"

    def _load(self, name: str) -> dict[str, Any]:
        path = self._path(name)
        if not path.exists():
            raise KeyNotFound("local", "lookup", name, "no such key")
        return json.loads(path.read_text())

    def _save(self, doc: dict[str, Any]) -> None:
        write_private(self._path(doc["name"]), json.dumps(doc, sort_keys=True).encode())

    def _seal(self, name: str, version: int, material: bytes) -> dict[str, str]:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, material, f"{name}|{version}".encode())
        return {"nonce": base64.b64encode(nonce).decode(), "sealed": base64.b64encode(sealed).decode()}

    def _unseal(self, name: str, version: int, blob: dict[str, str]) -> bytes:
        try:
            nonce, sealed = base64.b64decode(blob["nonce"]), base64.b64decode(blob["sealed"])
            return self._aead.decrypt(nonce, sealed, f"{name}|{version}".encode())
        except InvalidTag:
            raise BackendError(
                "local", "unseal", name, f"version {version} failed authentication (tampered?)"
            ) from None

    def _info(self, doc: dict[str, Any]) -> KeyInfo:
        _, size = ALGORITHMS.get(doc["algorithm"], ("", None))
        return KeyInfo(
            ref=KeyRef(Provider.LOCAL, f"local:{doc['name']}"),
            key_type=doc["key_type"],
            algorithm=doc["algorithm"],
            key_size=size,
            created_at=parse_timestamp(doc["created_at"]),
            version=doc["primary"],
            state=KeyState(doc["state"]),
            destroy_at=parse_timestamp(doc["destroy_at"]) if doc.get("destroy_at") else None,
            versions=[v["version"] for v in doc["versions"]],
            labels=doc.get("labels", {}),
            current_since=next(
                (parse_timestamp(v["created_at"]) for v in doc["versions"] if v["version"] == doc["primary"]), None
            ),
        )

    def _transition(self, doc: dict[str, Any], target: KeyState) -> None:
        check_transition("local", doc["name"], KeyState(doc["state"]), target)
        doc["state"] = str(target)

    # -- contract ------------------------------------------------------------------------------
    def describe(self, name: str) -> KeyInfo:
        return self._info(self._load(name))

    def list_keys(self) -> list[KeyInfo]:
        return [self._info(json.loads(p.read_text())) for p in sorted(self.dir.glob("*.json"))]

    def generate(self, spec: KeySpec) -> KeyInfo:
        if spec.algorithm not in self.algorithms:
            raise Unsupported("local", "generate", spec.name, f"algorithm {spec.algorithm} is not available")
        if self._path(spec.name).exists():
            existing = self.describe(spec.name)
            if existing.algorithm == spec.algorithm and existing.state is not KeyState.DESTROYED:
                return existing  # idempotent: the key already exists as asked
            raise InvalidKeyState("local", "generate", spec.name, "a different key with this name exists")
        now = format_timestamp(datetime.now(UTC))
        version = {"version": 1, "created_at": now, **self._seal(spec.name, 1, _material(spec.algorithm))}
        state = KeyState.PRE_ACTIVATION if spec.pre_activation else KeyState.ACTIVE
        return self._create(spec, state, version, GENERATION)

    def _create(
        self, spec: KeySpec, state: KeyState, version: dict[str, Any], generation: dict[str, str], **extra: Any
    ) -> KeyInfo:
        """Store a new key with its first version: generated, derived or imported."""
        doc = {
            "name": spec.name,
            "key_type": spec.key_type,
            "algorithm": spec.algorithm,
            "created_at": version["created_at"],
            "state": str(state),
            "primary": 1,
            "versions": [version],
            "labels": dict(spec.labels),
            "generation": generation,
            **extra,
        }
        self._save(doc)
        return self._info(doc)

    def derive(self, parent: str, spec: KeySpec, *, kdf: str, context: str) -> KeyInfo:
        """An AES-256 key derived from ``parent``'s current version (an active AES-256 key) by ``kdf``.

        The derivation (parent, parent version, KDF, label, context) is recorded with the key; the
        context is an identifier such as a tenant id, not a secret. Rotating a derived key derives
        again from the parent's current version, so its versions follow the parent's rotations.
        """
        if spec.algorithm != "AES-256":
            raise Unsupported("local", "derive", spec.name, "derived keys are AES-256")
        if kdf not in KDFS:
            raise Unsupported("local", "derive", spec.name, f"kdf must be one of {', '.join(KDFS)}")
        source = self._load(parent)
        if KeyState(source["state"]) is not KeyState.ACTIVE or source["algorithm"] != "AES-256":
            raise InvalidKeyState(
                "local", "derive", spec.name, f"{parent} must be an active AES-256 key to derive from"
            )
        derivation = {"from": parent, "kdf": kdf, "context": context, "label": spec.key_type}
        if self._path(spec.name).exists():
            existing = self._load(spec.name)
            recorded = {k: v for k, v in existing.get("derivation", {}).items() if k != "parent_version"}
            if recorded == derivation:
                return self._info(existing)  # idempotent
            raise InvalidKeyState("local", "derive", spec.name, "a different key with this name exists")
        now = format_timestamp(datetime.now(UTC))
        version = self._derived_version(spec.name, 1, source, derivation, now)
        made = {
            **GENERATION,
            "entropy_source": f"derived by {kdf} from local:{parent} v{source['primary']} (HMAC-SHA256)",
        }
        derived = derivation | {"parent_version": source["primary"]}
        return self._create(spec, KeyState.ACTIVE, version, made, derivation=derived)

    def _derived_version(
        self, name: str, version: int, source: dict[str, Any], derivation: dict[str, str], now: str
    ) -> dict[str, Any]:
        blob = next(v for v in source["versions"] if v["version"] == source["primary"])
        material = derive_material(
            derivation["kdf"],
            self._unseal(source["name"], source["primary"], blob),
            label=f"kmo:{derivation['label']}".encode(),
            context=derivation["context"].encode(),
        )
        return {
            "version": version,
            "created_at": now,
            "parent_version": source["primary"],
            **self._seal(name, version, material),
        }

    # -- distribution (actions/distribution.py) ------------------------------------------------------
    def import_key(self) -> bytes:
        """This keystore's RSA import key (public, PEM), made on first use; its private half is
        sealed under the master key like any key material."""
        path = self.dir / "import-key.sealed"
        if not path.exists():
            private = rsa.generate_private_key(public_exponent=65537, key_size=3072)
            der = private.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            write_private(path, json.dumps(self._seal("import-key", 0, der)).encode())
        private = self._import_private()
        return private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def _import_private(self) -> Any:
        blob = json.loads((self.dir / "import-key.sealed").read_text())
        return serialization.load_der_private_key(self._unseal("import-key", 0, blob), password=None)

    def export_wrapped(self, name: str, import_key_pem: bytes) -> bytes:
        """The primary version's material wrapped for another system's import key; never in plaintext."""
        doc = self._load(name)
        if KeyState(doc["state"]) is not KeyState.ACTIVE:
            raise InvalidKeyState(
                "local", "export", name, f"only active keys are distributed (this one is {doc['state']})"
            )
        blob = next(v for v in doc["versions"] if v["version"] == doc["primary"])
        try:
            return wrap(import_key_pem, self._unseal(name, doc["primary"], blob))
        except WrapError as exc:
            raise BackendError("local", "export", name, str(exc)) from None

    def import_wrapped(self, spec: KeySpec, envelope: bytes, *, source: str) -> KeyInfo:
        """A key wrapped for this keystore's import key lands pre-activation; :meth:`activate` is the
        separate step that makes it usable."""
        if self._path(spec.name).exists():
            raise InvalidKeyState("local", "import", spec.name, "a key with this name exists")
        if spec.algorithm not in ALGORITHMS:
            raise Unsupported("local", "import", spec.name, f"algorithm {spec.algorithm!r} is not available")
        try:
            material = unwrap(self._import_private(), envelope)
        except (WrapError, FileNotFoundError) as exc:
            raise BackendError("local", "import", spec.name, str(exc)) from None
        _check_material(spec, material)
        now = format_timestamp(datetime.now(UTC))
        version = {"version": 1, "created_at": now, **self._seal(spec.name, 1, material)}
        made = {**GENERATION, "entropy_source": f"imported, wrapped, from {source}"}
        return self._create(spec, KeyState.PRE_ACTIVATION, version, made, imported_from=source)

    def activate(self, name: str) -> KeyInfo:
        doc = self._load(name)
        self._transition(doc, KeyState.ACTIVE)
        self._save(doc)
        return self._info(doc)

    def rotate(self, name: str) -> KeyInfo:
        """A new version becomes primary; earlier versions stay available for decryption."""
        doc = self._load(name)
        if KeyState(doc["state"]) is not KeyState.ACTIVE:
            raise InvalidKeyState("local", "rotate", name, f"only active keys rotate (this one is {doc['state']})")
        version = max(v["version"] for v in doc["versions"]) + 1
        now = format_timestamp(datetime.now(UTC))
        if "derivation" in doc:  # a derived key follows its parent: derive again from its current version
            source = self._load(doc["derivation"]["from"])
            if source["primary"] == doc["derivation"]["parent_version"]:
                raise InvalidKeyState(
                    "local",
                    "rotate",
                    name,
                    f"derived from {source['name']} v{source['primary']}: rotate the parent first",
                )
            doc["versions"].append(self._derived_version(name, version, source, doc["derivation"], now))
            doc["derivation"]["parent_version"] = source["primary"]
        else:
            doc["versions"].append(
                {"version": version, "created_at": now, **self._seal(name, version, _material(doc["algorithm"]))}
            )
        doc["previous_primary"], doc["primary"], doc["rotated_at"] = doc["primary"], version, now
        self._save(doc)
        return self._info(doc)

    def rollback(self, name: str, to_version: int) -> KeyInfo:
        """Make an earlier version primary again, within the rollback window after a rotation."""
        doc = self._load(name)
        if to_version not in [v["version"] for v in doc["versions"]]:
            raise KeyNotFound("local", "rollback", name, f"no version {to_version}")
        rotated = parse_timestamp(doc["rotated_at"]) if doc.get("rotated_at") else None
        if rotated is None or datetime.now(UTC) - rotated > self.rollback_window:
            raise InvalidKeyState("local", "rollback", name, f"the rollback window ({self.rollback_window}) has passed")
        doc["primary"] = to_version
        self._save(doc)
        return self._info(doc)

    def disable(self, name: str) -> KeyInfo:
        doc = self._load(name)
        if KeyState(doc["state"]) is not KeyState.SUSPENDED:
            self._transition(doc, KeyState.SUSPENDED)
            self._save(doc)
        return self._info(doc)

    def enable(self, name: str) -> KeyInfo:
        doc = self._load(name)
        if doc.get("destroy_at"):
            raise InvalidKeyState("local", "enable", name, "cancel the scheduled destruction first")
        if KeyState(doc["state"]) is not KeyState.ACTIVE:
            self._transition(doc, KeyState.ACTIVE)
            self._save(doc)
        return self._info(doc)

    def schedule_destroy(self, name: str, pending: timedelta) -> KeyInfo:
        """Deactivate and set the destruction time (kmo's own soak period: this store has none)."""
        doc = self._load(name)
        if doc.get("destroy_at"):
            return self._info(doc)  # idempotent: keep the existing schedule
        if KeyState(doc["state"]) is not KeyState.DEACTIVATED:
            self._transition(doc, KeyState.DEACTIVATED)
        doc["destroy_at"] = format_timestamp(datetime.now(UTC) + pending)
        self._save(doc)
        return self._info(doc)

    def cancel_destroy(self, name: str) -> KeyInfo:
        doc = self._load(name)
        if KeyState(doc["state"]) is KeyState.DESTROYED:
            raise InvalidKeyState("local", "cancel_destroy", name, "already destroyed")
        doc.pop("destroy_at", None)
        self._save(doc)
        return self._info(doc)

    def destroy(self, name: str, *, now: datetime | None = None) -> KeyInfo:
        """Erase every version's material once the scheduled time has come; keep a tombstone."""
        doc = self._load(name)
        if KeyState(doc["state"]) is KeyState.DESTROYED:
            return self._info(doc)
        due = parse_timestamp(doc["destroy_at"]) if doc.get("destroy_at") else None
        if due is None or (now or datetime.now(UTC)) < due:
            raise InvalidKeyState(
                "local", "destroy", name, "destruction is not scheduled, or its pending window has not ended"
            )
        self._transition(doc, KeyState.DESTROYED)
        for version in doc["versions"]:
            version.pop("nonce", None)
            version.pop("sealed", None)
        doc["destroyed_at"] = format_timestamp(datetime.now(UTC))
        self._save(doc)
        return self._info(doc)

    # -- data plane (AES keys), for applications and for proving rotations keep decrypting ------------
    def encrypt(self, name: str, plaintext: bytes, context: bytes = b"") -> bytes:
        doc = self._load(name)
        if KeyState(doc["state"]) is not KeyState.ACTIVE or doc["algorithm"] != "AES-256":
            raise InvalidKeyState("local", "encrypt", name, "encryption needs an active AES-256 key")
        version = doc["primary"]
        blob = next(v for v in doc["versions"] if v["version"] == version)
        nonce = secrets.token_bytes(12)
        body = AESGCM(self._unseal(name, version, blob)).encrypt(nonce, plaintext, context)
        return b"kmo:v%d:" % version + base64.b64encode(nonce + body)

    def decrypt(self, name: str, ciphertext: bytes, context: bytes = b"") -> bytes:
        doc = self._load(name)
        if KeyState(doc["state"]) in (KeyState.DESTROYED, KeyState.PRE_ACTIVATION) or doc.get("destroy_at"):
            raise InvalidKeyState("local", "decrypt", name, f"a {doc['state']} key does not decrypt")
        head, _, body = ciphertext.partition(b":v")[2].partition(b":")
        version = int(head)
        blob = next((v for v in doc["versions"] if v["version"] == version), None)
        if blob is None or "sealed" not in blob:
            raise KeyNotFound("local", "decrypt", name, f"version {version} is gone")
        raw = base64.b64decode(body)
        try:
            return AESGCM(self._unseal(name, version, blob)).decrypt(raw[:12], raw[12:], context)
        except InvalidTag:
            raise BackendError("local", "decrypt", name, "ciphertext or context failed authentication") from None
