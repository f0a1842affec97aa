"""HashiCorp Vault / OpenBao transit engine, through hvac.

Transit facts (developer.hashicorp.com/vault/docs/secrets/transit, checked against OpenBao 2.7):
a key is a versioned ring; new encryptions use the latest version and older versions decrypt until
``min_decryption_version`` moves past them; there is no disable and no soft delete: ``DELETE`` is
immediate and needs ``deletion_allowed``. So this adapter declares no DISABLE/ENABLE/ROLLBACK, and
destroys only when constructed with ``allow_immediate_destroy`` (the orchestrator provides the
pending window and the approvals before it does that).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import hvac
import requests
from hvac import exceptions as hvac_errors

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

TRANSIT_TYPES = {
    "AES-256": "aes256-gcm96",
    "RSA-2048": "rsa-2048",
    "RSA-4096": "rsa-4096",
    "ECDSA-P256": "ecdsa-p256",
    "ECDSA-P384": "ecdsa-p384",
    "Ed25519": "ed25519",
}
_ALGORITHM_OF = {v: k for k, v in TRANSIT_TYPES.items()}


class VaultTransit(RefusesUndeclared):
    """One transit mount. Thread-safe as far as hvac's client is (one per thread is safest)."""

    system: ClassVar[Provider] = Provider.VAULT
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.DESCRIBE, Capability.LIST, Capability.GENERATE, Capability.ROTATE, Capability.DESTROY}
    )
    algorithms: ClassVar[frozenset[str]] = frozenset(TRANSIT_TYPES)
    refusals: ClassVar[dict[Capability, str]] = {
        Capability.ROLLBACK: "transit always encrypts with the latest version",
        Capability.DISABLE: "transit keys have no disabled state",
        Capability.ENABLE: "transit keys have no disabled state",
        Capability.SCHEDULE_DESTROY: "transit deletes immediately; no pending window",
        Capability.CANCEL_DESTROY: "transit deletes immediately; no pending window",
    }

    generation: ClassVar[dict[str, str]] = {
        "entropy_source": "the Vault/OpenBao server's CSPRNG (Go crypto/rand; Enterprise can add a seal's entropy)",
        "module": "Vault/OpenBao transit secrets engine",
    }

    def __init__(self, client: hvac.Client, mount: str = "transit", *, allow_immediate_destroy: bool = False) -> None:
        self.client = client
        self.mount = mount.strip("/")
        self.allow_immediate_destroy = allow_immediate_destroy

    def _call(self, operation: str, key: str | None, fn: Any, /, **kwargs: Any) -> Any:
        """Call hvac and map its errors onto the backend contract's (``key`` is only for the message)."""
        try:
            return fn(mount_point=self.mount, **kwargs)
        except hvac_errors.InvalidPath as exc:
            raise KeyNotFound("vault", operation, key, "no such key") from exc
        except hvac_errors.Forbidden as exc:
            raise PermissionDenied("vault", operation, key, "permission denied") from exc
        except (hvac_errors.VaultDown, requests.ConnectionError, requests.Timeout) as exc:
            raise BackendUnavailable("vault", operation, key, type(exc).__name__) from exc
        except hvac_errors.VaultError as exc:
            raise BackendError("vault", operation, key, type(exc).__name__) from exc

    @staticmethod
    def _when(value: Any) -> datetime | None:
        """Transit reports a version's creation as a unix time (symmetric) or an RFC 3339 string."""
        if isinstance(value, int):
            return datetime.fromtimestamp(value, tz=UTC)
        if isinstance(value, str):
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        if isinstance(value, dict):  # asymmetric keys: {"creation_time": ..., "public_key": ...}
            return VaultTransit._when(value.get("creation_time"))
        return None

    def _info(self, name: str, data: dict[str, Any]) -> KeyInfo:
        keys = data.get("keys") or {}
        versions = sorted(int(v) for v in keys)
        created = self._when(keys.get(str(versions[0]))) if versions else None
        algorithm = _ALGORITHM_OF.get(data.get("type", ""))
        return KeyInfo(
            ref=KeyRef.vault(self.mount, name),
            key_type=None,
            algorithm=algorithm,
            key_size=ALGORITHMS[algorithm][1] if algorithm else None,
            created_at=created,
            version=data.get("latest_version"),
            state=KeyState.ACTIVE,
            versions=versions,
            current_since=self._when(keys.get(str(data.get("latest_version")))),
            labels={
                "min_decryption_version": str(data.get("min_decryption_version")),
                "min_encryption_version": str(data.get("min_encryption_version")),
                "auto_rotate_period": str(data.get("auto_rotate_period")),
            },
        )

    def describe(self, name: str) -> KeyInfo:
        data = self._call("describe", name, self.client.secrets.transit.read_key, name=name)["data"]
        return self._info(name, data)

    def list_keys(self) -> list[KeyInfo]:
        try:
            names = self._call("list", None, self.client.secrets.transit.list_keys)["data"]["keys"]
        except KeyNotFound:
            return []  # Vault answers 404 for an empty list
        # entries ending in "/" are storage prefixes, not keys (OpenBao lists "import/" after a BYOK import)
        return [self.describe(n) for n in names if not n.endswith("/")]

    def generate(self, spec: KeySpec) -> KeyInfo:
        require(self, Capability.GENERATE, spec.name)
        no_pre_activation("vault", spec)
        if spec.algorithm not in TRANSIT_TYPES:
            raise Unsupported("vault", "generate", spec.name, f"transit has no {spec.algorithm}")
        try:
            existing = self.describe(spec.name)
        except KeyNotFound:
            existing = None
        if existing is not None:
            if existing.algorithm != spec.algorithm:
                raise InvalidKeyState("vault", "generate", spec.name, f"exists as {existing.algorithm}")
            return existing  # idempotent
        self._call(
            "generate",
            spec.name,
            self.client.secrets.transit.create_key,
            name=spec.name,
            key_type=TRANSIT_TYPES[spec.algorithm],
        )
        return self.describe(spec.name)

    def rotate(self, name: str) -> KeyInfo:
        require(self, Capability.ROTATE, name)
        self.describe(name)  # transit answers 400 "key not found" to a rotate; say KeyNotFound instead
        self._call("rotate", name, self.client.secrets.transit.rotate_key, name=name)
        return self.describe(name)

    def set_rotation_period(self, name: str, period: timedelta) -> KeyInfo:
        """Vault rotates the key itself every ``period`` (checked about hourly by Vault)."""
        hours = max(1, int(period.total_seconds() // 3600))
        self._call(
            "rotation_config",
            name,
            self.client.secrets.transit.update_key_configuration,
            name=name,
            auto_rotate_period=f"{hours}h",
        )
        return self.describe(name)

    def retire_versions(self, name: str, below: int) -> KeyInfo:
        """Versions below ``below`` stop decrypting (``min_decryption_version``): SP 800-57 deactivation
        of old versions, reversible by lowering it again. Their material stays until a ``trim``,
        which is destruction and so belongs to the destruction pipeline, not here."""
        info = self.describe(name)
        if info.version is None or not 1 <= below <= info.version:
            raise InvalidKeyState(
                "vault", "retire", name, f"versions run 1..{info.version}; cannot retire below {below}"
            )
        self._call(
            "retire",
            name,
            self.client.secrets.transit.update_key_configuration,
            name=name,
            min_decryption_version=below,  # encryption already uses the latest version
        )
        return self.describe(name)

    def import_key(self) -> bytes:
        """Transit's wrapping key (``GET <mount>/wrapping_key``): the RSA-4096 key BYOK imports are wrapped for."""
        data = self._call("import", None, lambda mount_point: self.client.read(f"{mount_point}/wrapping_key"))
        return data["data"]["public_key"].encode()

    def import_wrapped(self, spec: KeySpec, envelope: bytes, *, source: str) -> KeyInfo:
        """``POST <mount>/keys/<name>/import`` (BYOK). Transit has no pre-activation state: the key is
        usable as soon as it lands, which the caller's audit entry records."""
        if spec.algorithm not in TRANSIT_TYPES:
            raise Unsupported("vault", "import", spec.name, f"transit has no {spec.algorithm}")
        try:
            self.describe(spec.name)
        except KeyNotFound:
            pass
        else:
            raise InvalidKeyState("vault", "import", spec.name, "a key with this name exists")
        body = {
            "ciphertext": base64.b64encode(envelope).decode(),
            "type": TRANSIT_TYPES[spec.algorithm],
            "hash_function": "SHA256",
            "exportable": False,
            "allow_plaintext_backup": False,
        }
        self._call(
            "import",
            spec.name,
            lambda mount_point: self.client.adapter.post(f"/v1/{mount_point}/keys/{spec.name}/import", json=body),
        )
        return self.describe(spec.name)

    def destroy(self, name: str) -> KeyInfo:
        """Immediate and unrecoverable: only after the orchestrator's soak and approvals."""
        require(self, Capability.DESTROY, name)
        if not self.allow_immediate_destroy:
            raise Unsupported(
                "vault",
                "destroy",
                name,
                "transit deletes immediately; the orchestrator must run "
                "its destruction pipeline (soak, dual-control approvals) first",
            )
        info = self.describe(name)
        self._call(
            "destroy", name, self.client.secrets.transit.update_key_configuration, name=name, deletion_allowed=True
        )
        self._call("destroy", name, self.client.secrets.transit.delete_key, name=name)
        info.state = KeyState.DESTROYED
        return info
