"""Hardware security modules through PKCS#11 (python-pkcs11): SoftHSM2 in tests, and the same adapter
for Thales Luna (``libCryptoki2_64.so``) and AWS CloudHSM (``libcloudhsm_pkcs11.so``) in production.

PKCS#11 has objects, not versioned keys, so kmo keeps a version per object: every object of a key
carries the key's name as CKA_LABEL and ``<name>/v<n>`` as CKA_ID; the highest version is primary and
older ones stay on the token for decryption. Keys are generated inside the token by its own
generator, as token objects with CKA_SENSITIVE true and CKA_EXTRACTABLE false, so their values can
never be read out. There is no disabled state and destruction is immediate (C_DestroyObject), so
this adapter declares neither disable nor scheduled destruction, and destroys only when built with
``allow_immediate_destroy`` (the destruction pipeline's last step, after approvals and soak).
The user PIN is taken from the caller and never logged or included in an error.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from typing import Any, ClassVar

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.util.ec import encode_named_curve_parameters

from actions.backends.base import (
    ALGORITHMS,
    BackendError,
    BackendUnavailable,
    Capability,
    InvalidKeyState,
    KeyInfo,
    KeyNotFound,
    KeySpec,
    KeyState,
    PermissionDenied,
    RefusesUndeclared,
    Unsupported,
    no_pre_activation,
    require,
)
from ingest.schema import KeyRef, Provider

_CURVES = {"ECDSA-P256": "secp256r1", "ECDSA-P384": "secp384r1", "Ed25519": "1.3.101.112"}
_CURVE_OF = {encode_named_curve_parameters(v): k for k, v in _CURVES.items()}
# PKCS#11 3.0 also allows a curve name as a DER PrintableString; SoftHSM2 stores Ed25519 private keys so.
_CURVE_OF[b"\x13\x0cedwards25519"] = "Ed25519"
_ID = re.compile(r"^(?P<name>.+)/v(?P<version>[0-9]+)$")
_KEY_CLASSES = (ObjectClass.SECRET_KEY, ObjectClass.PRIVATE_KEY)
_PRIVATE = {Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False}
# backup-capable keys: still never readable, but wrappable, and only by a key the SO marked trusted
BACKUP_CAPABLE = {**_PRIVATE, Attribute.EXTRACTABLE: True, Attribute.WRAP_WITH_TRUSTED: True}
_LIBS: dict[str, pkcs11.lib] = {}
_LIBS_LOCK = threading.Lock()


def _trusted_only(key: Any) -> bool:
    try:
        return bool(key[Attribute.WRAP_WITH_TRUSTED])
    except p11.PKCS11Error:
        return False


def library(module: str) -> pkcs11.lib:
    """A PKCS#11 module is initialised once per process (C_Initialize), so it is shared."""
    with _LIBS_LOCK:
        if module not in _LIBS:
            _LIBS[module] = pkcs11.lib(module)
        return _LIBS[module]


class Pkcs11Hsm(RefusesUndeclared):
    """One token on one PKCS#11 module."""

    system: ClassVar[Provider] = Provider.HSM
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.DESCRIBE, Capability.LIST, Capability.GENERATE, Capability.ROTATE, Capability.DESTROY}
    )
    algorithms: ClassVar[frozenset[str]] = frozenset(ALGORITHMS)
    refusals: ClassVar[dict[Capability, str]] = {
        Capability.ROLLBACK: "kmo's PKCS#11 versions have no primary pointer to move back",
        Capability.DISABLE: "PKCS#11 objects have no disabled state",
        Capability.ENABLE: "PKCS#11 objects have no disabled state",
        Capability.SCHEDULE_DESTROY: "PKCS#11 destroys immediately; no pending window",
        Capability.CANCEL_DESTROY: "PKCS#11 destroys immediately; no pending window",
    }

    def __init__(
        self,
        module: str,
        token_label: str,
        user_pin: str,
        *,
        allow_immediate_destroy: bool = False,
        backup_capable: bool = False,
    ) -> None:
        self.module = module
        self.token_label = token_label
        self._pin = user_pin
        self.allow_immediate_destroy = allow_immediate_destroy
        # keys made extractable only under a trusted wrapping key (actions/hsm_backup.py), or never
        self._template = BACKUP_CAPABLE if backup_capable else _PRIVATE

    @property
    def generation(self) -> dict[str, str]:
        """Where keys are made: on the token, by its own RNG; the module as it describes itself."""
        try:
            lib = library(self.module)
            module = f"{lib.manufacturer_id.strip()} {lib.library_description.strip()} ({self.module})"
        except (OSError, RuntimeError, AttributeError):
            module = self.module
        return {
            "entropy_source": "the token's RNG (C_GenerateKey / C_GenerateKeyPair inside the token)",
            "module": module,
        }

    def __repr__(self) -> str:  # never the PIN
        return f"Pkcs11Hsm(module={self.module!r}, token={self.token_label!r})"

    def session(self, operation: str, key: str | None) -> Any:
        """A logged-in read-write session on the token, login errors mapped onto the contract's
        (also what :mod:`actions.hsm_backup` and :mod:`actions.hsm_health` work through)."""
        try:
            token = library(self.module).get_token(token_label=self.token_label)
            return token.open(user_pin=self._pin, rw=True)
        except (p11.NoSuchToken, p11.TokenNotPresent, p11.TokenNotRecognised) as exc:
            raise BackendUnavailable("hsm", operation, key, f"no token {self.token_label!r}") from exc
        except (p11.PinIncorrect, p11.PinLocked, p11.PinExpired, p11.PinInvalid, p11.PinLenRange) as exc:
            raise PermissionDenied("hsm", operation, key, f"login refused: {type(exc).__name__}") from exc
        except (OSError, RuntimeError) as exc:
            raise BackendUnavailable("hsm", operation, key, f"cannot load the PKCS#11 module: {exc}") from exc

    def key_objects(self, session: Any, name: str | None = None) -> dict[str, dict[int, list[Any]]]:
        """name -> version -> objects (secret key, or private and public key)."""
        found: dict[str, dict[int, list[Any]]] = defaultdict(lambda: defaultdict(list))
        template = {Attribute.LABEL: name} if name is not None else {}
        for obj in session.get_objects(template):
            if ObjectClass(obj[Attribute.CLASS]) not in (*_KEY_CLASSES, ObjectClass.PUBLIC_KEY):
                continue
            m = _ID.match(bytes(obj[Attribute.ID]).decode("utf-8", "replace"))
            if m and m.group("name") == obj[Attribute.LABEL]:
                found[m.group("name")][int(m.group("version"))].append(obj)
        return found

    def _info(self, name: str, versions: dict[int, list[Any]]) -> KeyInfo:
        primary = max(versions)
        key = next(o for o in versions[primary] if ObjectClass(o[Attribute.CLASS]) in _KEY_CLASSES)
        key_type = KeyType(key[Attribute.KEY_TYPE])
        algorithm: str | None = None
        if key_type is KeyType.AES and key[Attribute.VALUE_LEN] == 32:
            algorithm = "AES-256"
        elif key_type is KeyType.RSA:
            public = next(o for o in versions[primary] if ObjectClass(o[Attribute.CLASS]) is ObjectClass.PUBLIC_KEY)
            algorithm = f"RSA-{public[Attribute.MODULUS_BITS]}"
        elif key_type in (KeyType.EC, KeyType.EC_EDWARDS):
            algorithm = _CURVE_OF.get(bytes(key[Attribute.EC_PARAMS]))
        return KeyInfo(
            ref=KeyRef.pkcs11(self.token_label, label=name),
            key_type=None,
            algorithm=algorithm if algorithm in ALGORITHMS else None,
            key_size=ALGORITHMS[algorithm][1] if algorithm in ALGORITHMS else None,
            created_at=None,  # PKCS#11 records no creation time
            version=primary,
            state=KeyState.ACTIVE,
            versions=sorted(versions),
            labels={
                "sensitive": str(bool(key[Attribute.SENSITIVE])).lower(),
                "extractable": str(bool(key[Attribute.EXTRACTABLE])).lower(),
                **({"wrap_with_trusted": "true"} if key[Attribute.EXTRACTABLE] and _trusted_only(key) else {}),
                "generated_on_token": str(bool(key[Attribute.LOCAL])).lower(),
            },
        )

    def _wrap(self, operation: str, key: str | None, exc: Exception) -> BackendError:
        return BackendError("hsm", operation, key, type(exc).__name__)

    def describe(self, name: str) -> KeyInfo:
        with self.session("describe", name) as session:
            try:
                versions = self.key_objects(session, name).get(name)
            except p11.PKCS11Error as exc:
                raise self._wrap("describe", name, exc) from exc
            if not versions:
                raise KeyNotFound("hsm", "describe", name, f"no key objects labelled {name!r} on the token")
            return self._info(name, versions)

    def list_keys(self) -> list[KeyInfo]:
        with self.session("list", None) as session:
            return [self._info(n, v) for n, v in sorted(self.key_objects(session).items())]

    def _generate_version(self, session: Any, name: str, algorithm: str, version: int) -> None:
        ident = f"{name}/v{version}".encode()
        common = {"id": ident, "label": name, "store": True}
        if algorithm == "AES-256":
            session.generate_key(KeyType.AES, 256, template=dict(self._template), **common)
        elif algorithm.startswith("RSA-"):
            session.generate_keypair(KeyType.RSA, int(algorithm[4:]), private_template=dict(self._template), **common)
        else:
            key_type = KeyType.EC_EDWARDS if algorithm == "Ed25519" else KeyType.EC
            params = session.create_domain_parameters(
                key_type, {Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVES[algorithm])}, local=True
            )
            mechanism = Mechanism.EC_EDWARDS_KEY_PAIR_GEN if algorithm == "Ed25519" else None
            params.generate_keypair(private_template=dict(self._template), mechanism=mechanism, **common)

    def generate(self, spec: KeySpec) -> KeyInfo:
        require(self, Capability.GENERATE, spec.name)
        no_pre_activation("hsm", spec)
        if spec.algorithm not in ALGORITHMS:
            raise Unsupported("hsm", "generate", spec.name, f"no {spec.algorithm} on this adapter")
        if "/" in spec.name:
            raise Unsupported("hsm", "generate", spec.name, "key names may not contain '/'")
        with self.session("generate", spec.name) as session:
            existing = self.key_objects(session, spec.name).get(spec.name)
            if existing:
                info = self._info(spec.name, existing)
                if info.algorithm != spec.algorithm:
                    raise InvalidKeyState("hsm", "generate", spec.name, f"exists as {info.algorithm}")
                return info  # idempotent
            try:
                self._generate_version(session, spec.name, spec.algorithm, 1)
            except p11.PKCS11Error as exc:
                raise self._wrap("generate", spec.name, exc) from exc
            return self._info(spec.name, self.key_objects(session, spec.name)[spec.name])

    def rotate(self, name: str) -> KeyInfo:
        """A new object version generated on the token becomes primary; older ones stay for decryption."""
        require(self, Capability.ROTATE, name)
        with self.session("rotate", name) as session:
            versions = self.key_objects(session, name).get(name)
            if not versions:
                raise KeyNotFound("hsm", "rotate", name, "no such key on the token")
            info = self._info(name, versions)
            if info.algorithm is None:
                raise Unsupported("hsm", "rotate", name, "a key kmo did not create and cannot identify")
            try:
                self._generate_version(session, name, info.algorithm, max(versions) + 1)
            except p11.PKCS11Error as exc:
                raise self._wrap("rotate", name, exc) from exc
            return self._info(name, self.key_objects(session, name)[name])

    def destroy(self, name: str) -> KeyInfo:
        """C_DestroyObject on every object of every version: immediate, so only after the pipeline."""
        require(self, Capability.DESTROY, name)
        if not self.allow_immediate_destroy:
            raise Unsupported(
                "hsm", "destroy", name, "PKCS#11 destroys immediately; run the destruction pipeline (dual-control)"
            )
        with self.session("destroy", name) as session:
            versions = self.key_objects(session, name).get(name)
            if not versions:
                raise KeyNotFound("hsm", "destroy", name, "no such key on the token")
            info = self._info(name, versions)
            for objects in versions.values():
                for obj in objects:  # the public half too: destroying a private key leaves it behind
                    obj.destroy()
        info.state = KeyState.DESTROYED
        return info
