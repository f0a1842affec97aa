"""The contract every key manager adapter implements.

Rules for implementers:

* **Idempotent by target state.** Disabling a disabled key returns its state; scheduling the
  destruction of a key already scheduled returns the existing schedule.
* **Declare, don't surprise.** An operation outside ``capabilities``, or an algorithm outside
  ``algorithms``, raises :class:`Unsupported` before any call to the provider.
* **States follow NIST SP 800-57** (pre-activation, active, suspended, deactivated, compromised,
  destroyed); each adapter maps its provider's states onto them, and illegal transitions are refused
  (:func:`check_transition`) whatever the provider would allow.
* **One error hierarchy, cause kept.** Provider exceptions are re-raised as :class:`BackendError`
  subclasses ``from`` the original. Only :class:`Throttled` and :class:`BackendUnavailable` are
  retried, by the caller, never inside an adapter.
* **Key material never leaves** an adapter: nothing here returns, logs or raises it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar, NoReturn, Protocol

from ingest.schema import KeyRef, Provider, format_timestamp


class Capability(StrEnum):
    DESCRIBE = "describe"
    LIST = "list"
    GENERATE = "generate"
    ROTATE = "rotate"
    ROLLBACK = "rollback"
    DISABLE = "disable"
    ENABLE = "enable"
    SCHEDULE_DESTROY = "schedule_destroy"
    CANCEL_DESTROY = "cancel_destroy"
    DESTROY = "destroy"


class KeyState(StrEnum):
    """NIST SP 800-57 Part 1 key states."""

    PRE_ACTIVATION = "pre-activation"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DEACTIVATED = "deactivated"
    COMPROMISED = "compromised"
    DESTROYED = "destroyed"


# SP 800-57 §7: which state may follow which. Destroyed is final; compromised only goes to destroyed.
TRANSITIONS: dict[KeyState, frozenset[KeyState]] = {
    KeyState.PRE_ACTIVATION: frozenset({KeyState.ACTIVE, KeyState.DESTROYED, KeyState.COMPROMISED}),
    KeyState.ACTIVE: frozenset({KeyState.SUSPENDED, KeyState.DEACTIVATED, KeyState.COMPROMISED}),
    KeyState.SUSPENDED: frozenset({KeyState.ACTIVE, KeyState.DEACTIVATED, KeyState.COMPROMISED}),
    KeyState.DEACTIVATED: frozenset({KeyState.DESTROYED, KeyState.COMPROMISED}),
    KeyState.COMPROMISED: frozenset({KeyState.DESTROYED}),
    KeyState.DESTROYED: frozenset(),
}


class BackendError(Exception):
    """Something a key manager refused or could not do; names the system, operation and key."""

    def __init__(self, system: str, operation: str, key: str | None, reason: str) -> None:
        super().__init__(f"{system} {operation} {key or ''}: {reason}".replace("  ", " "))
        self.system, self.operation, self.key, self.reason = system, operation, key, reason


class KeyNotFound(BackendError):
    pass


class PermissionDenied(BackendError):
    pass


class InvalidKeyState(BackendError):
    pass


class Unsupported(BackendError):
    pass


class Throttled(BackendError):
    pass


class BackendUnavailable(BackendError):
    pass


def check_transition(system: str, key: str, current: KeyState, target: KeyState) -> None:
    """Refuse a state change SP 800-57 does not allow (staying in the same state is always fine)."""
    if current != target and target not in TRANSITIONS[current]:
        raise InvalidKeyState(system, f"-> {target}", key, f"a {current} key cannot become {target}")


# The specification's algorithms -> (key family, size in bits)
ALGORITHMS: dict[str, tuple[str, int]] = {
    "AES-256": ("aes", 256),
    "RSA-2048": ("rsa", 2048),
    "RSA-4096": ("rsa", 4096),
    "ECDSA-P256": ("ec", 256),
    "ECDSA-P384": ("ec", 384),
    "Ed25519": ("ed25519", 256),
}


@dataclass(frozen=True)
class KeySpec:
    """What to generate."""

    name: str
    key_type: str  # master | data | signing | tls | api | session
    algorithm: str  # one of ALGORITHMS
    labels: dict[str, str] = field(default_factory=dict)
    pre_activation: bool = False  # created pre-activation; activated as a separate, recorded step


@dataclass
class KeyInfo:
    """A key as its manager describes it, in kmo's terms."""

    ref: KeyRef
    key_type: str | None
    algorithm: str | None
    key_size: int | None
    created_at: datetime | None
    version: int | None
    state: KeyState
    destroy_at: datetime | None = None
    expires_at: datetime | None = None
    versions: list[int] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    current_since: datetime | None = None  # when the primary version was made: the age rotation policy checks

    @property
    def status(self) -> str:
        """The specification's status enum."""
        if self.state is KeyState.DESTROYED:
            return "destroyed"
        if self.destroy_at is not None:
            return "pending-destruction"
        return "active" if self.state is KeyState.ACTIVE else "inactive"

    def to_schema(self) -> dict[str, Any]:
        """The specification's ``keyInfo`` object."""
        out: dict[str, Any] = {"keyId": self.ref.uri, "status": self.status}
        if self.key_type:
            out["keyType"] = self.key_type
        if self.algorithm:
            out["algorithm"] = self.algorithm
        if self.key_size:
            out["keySize"] = self.key_size
        if self.created_at:
            out["createdAt"] = format_timestamp(self.created_at)
        if self.expires_at:
            out["expiresAt"] = format_timestamp(self.expires_at)
        if self.version is not None:
            out["version"] = self.version
        return out


class KeyBackend(Protocol):
    system: ClassVar[Provider]
    capabilities: ClassVar[frozenset[Capability]]
    algorithms: ClassVar[frozenset[str]]

    def describe(self, name: str) -> KeyInfo: ...

    def list_keys(self) -> list[KeyInfo]: ...

    def generate(self, spec: KeySpec) -> KeyInfo: ...

    def rotate(self, name: str) -> KeyInfo: ...

    def rollback(self, name: str, to_version: int) -> KeyInfo: ...

    def disable(self, name: str) -> KeyInfo: ...

    def enable(self, name: str) -> KeyInfo: ...

    def schedule_destroy(self, name: str, pending: timedelta) -> KeyInfo: ...

    def cancel_destroy(self, name: str) -> KeyInfo: ...


def require(backend: Any, capability: Capability, name: str | None = None) -> None:
    """Raise :class:`Unsupported` before any provider call when ``backend`` lacks ``capability``."""
    if capability not in backend.capabilities:
        raise Unsupported(
            str(backend.system),
            str(capability),
            name,
            f"{backend.system} does not support {capability} (supports: {', '.join(sorted(backend.capabilities))})",
        )


def no_pre_activation(system: str, spec: KeySpec) -> None:
    """Refuse a pre-activation generate where the provider makes keys usable at once (rather than
    silently ignoring the request): only the local keystore holds generated keys pre-activation."""
    if spec.pre_activation:
        raise Unsupported(
            system, "generate", spec.name, f"{system} generates keys active; it has no pre-activation state"
        )


class RefusesUndeclared:
    """The contract's lifecycle methods, each refusing before any provider call.

    A backend inherits this and overrides what it declares in ``capabilities``; ``refusals`` gives
    the provider's own reason for each operation it cannot do (transit has no disabled state, say).
    """

    system: ClassVar[Provider]
    refusals: ClassVar[dict[Capability, str]] = {}

    def _refuse(self, capability: Capability, name: str) -> NoReturn:
        reason = self.refusals.get(capability) or f"{self.system} does not support {capability}"
        raise Unsupported(str(self.system), str(capability), name, reason)

    def rollback(self, name: str, to_version: int) -> KeyInfo:
        self._refuse(Capability.ROLLBACK, name)

    def disable(self, name: str) -> KeyInfo:
        self._refuse(Capability.DISABLE, name)

    def enable(self, name: str) -> KeyInfo:
        self._refuse(Capability.ENABLE, name)

    def schedule_destroy(self, name: str, pending: timedelta) -> KeyInfo:
        self._refuse(Capability.SCHEDULE_DESTROY, name)

    def cancel_destroy(self, name: str) -> KeyInfo:
        self._refuse(Capability.CANCEL_DESTROY, name)
