"""Google Cloud KMS, through google-cloud-kms.

GCP facts this adapter builds on (cloud.google.com/kms/docs): keys live in a key ring
(``projects/P/locations/L/keyRings/R``) and are never deleted, only their versions are destroyed,
so a destroyed key is a tombstone whose versions hold no material. State is per version (ENABLED,
DISABLED, DESTROY_SCHEDULED, DESTROYED, ...); a symmetric key has a *primary* version that encrypts,
which can be pointed back at an earlier enabled version (a real rollback); asymmetric keys have no
primary, so callers name the version and kmo treats the newest enabled one as current. Destroying
a version schedules it for the key's ``destroyScheduledDuration`` (fixed when the key is created;
24 hours to 120 days, 30 days by default) and ``restore`` cancels it, leaving the version DISABLED.

kmo's key state is derived from the versions: every version destroyed -> destroyed; any scheduled
and none enabled -> deactivated (pending destruction); the current version enabled -> active;
otherwise suspended. State rules are checked here before any call.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from google.api_core import exceptions as gexc
from google.cloud import kms
from google.protobuf import field_mask_pb2

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
    Throttled,
    Unsupported,
    check_transition,
    no_pre_activation,
    require,
)
from ingest.schema import KeyRef, Provider

Algo = kms.CryptoKeyVersion.CryptoKeyVersionAlgorithm
Purpose = kms.CryptoKey.CryptoKeyPurpose
VState = kms.CryptoKeyVersion.CryptoKeyVersionState

# kmo algorithm -> (purpose for encryption-type keys, purpose for signing-type keys) as (purpose, algorithm)
_SIGNING_TYPES = {"signing", "tls"}
_ENCRYPTING: dict[str, tuple[Any, Any]] = {
    "AES-256": (Purpose.ENCRYPT_DECRYPT, Algo.GOOGLE_SYMMETRIC_ENCRYPTION),
    "RSA-2048": (Purpose.ASYMMETRIC_DECRYPT, Algo.RSA_DECRYPT_OAEP_2048_SHA256),
    "RSA-4096": (Purpose.ASYMMETRIC_DECRYPT, Algo.RSA_DECRYPT_OAEP_4096_SHA256),
}
_SIGNING: dict[str, tuple[Any, Any]] = {
    "RSA-2048": (Purpose.ASYMMETRIC_SIGN, Algo.RSA_SIGN_PKCS1_2048_SHA256),
    "RSA-4096": (Purpose.ASYMMETRIC_SIGN, Algo.RSA_SIGN_PKCS1_4096_SHA256),
    "ECDSA-P256": (Purpose.ASYMMETRIC_SIGN, Algo.EC_SIGN_P256_SHA256),
    "ECDSA-P384": (Purpose.ASYMMETRIC_SIGN, Algo.EC_SIGN_P384_SHA384),
    "Ed25519": (Purpose.ASYMMETRIC_SIGN, Algo.EC_SIGN_ED25519),
}
_ALGORITHM_OF = {a.name: k for k, (_p, a) in [*_ENCRYPTING.items(), *_SIGNING.items()]}
DESTROY_WINDOW = (timedelta(hours=24), timedelta(days=120))
_ERRORS: list[tuple[type[Exception], type[BackendError]]] = [
    (gexc.NotFound, KeyNotFound),
    (gexc.PermissionDenied, PermissionDenied),
    (gexc.Unauthenticated, PermissionDenied),
    (gexc.FailedPrecondition, InvalidKeyState),  # over gRPC; REST reports it as a plain 400
    (gexc.TooManyRequests, Throttled),
    (gexc.ResourceExhausted, Throttled),
    (gexc.ServiceUnavailable, BackendUnavailable),
    (gexc.DeadlineExceeded, BackendUnavailable),
    (gexc.InternalServerError, BackendUnavailable),
]


def _purpose(operation: str, spec: KeySpec) -> tuple[Any, Any]:
    """(purpose, version algorithm) for a spec: signing types and curves sign, the rest encrypt."""
    table = _SIGNING if spec.key_type in _SIGNING_TYPES or spec.algorithm.startswith(("ECDSA", "Ed")) else _ENCRYPTING
    if spec.algorithm not in table:
        raise Unsupported(
            "gcp-kms", operation, spec.name, f"Cloud KMS has no {spec.algorithm} key for {spec.key_type} use"
        )
    return table[spec.algorithm]


def _number(version_name: str) -> int:
    return int(version_name.rsplit("/", 1)[-1])


class GcpKms(RefusesUndeclared):
    """One key ring. ``client`` is a ``KeyManagementServiceClient`` (credentials from google-auth's
    usual chain; tests pass one pointed at a local server)."""

    system: ClassVar[Provider] = Provider.GCP_KMS
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.DESCRIBE,
            Capability.LIST,
            Capability.GENERATE,
            Capability.ROTATE,
            Capability.ROLLBACK,
            Capability.DISABLE,
            Capability.ENABLE,
            Capability.SCHEDULE_DESTROY,
            Capability.CANCEL_DESTROY,
        }
    )
    algorithms: ClassVar[frozenset[str]] = frozenset(_ENCRYPTING) | frozenset(_SIGNING)

    generation: ClassVar[dict[str, str]] = {
        "entropy_source": "Cloud KMS key generation (material made inside Cloud KMS, protection level SOFTWARE)",
        "module": "Google Cloud KMS",
    }

    holds_labels: ClassVar[bool] = True

    def __init__(self, client: Any, key_ring: str, *, destroy_window: timedelta = timedelta(days=30)) -> None:
        if not DESTROY_WINDOW[0] <= destroy_window <= DESTROY_WINDOW[1]:
            raise ValueError("GCP destroy-scheduled durations are 24 hours to 120 days")
        self.client, self.key_ring, self.destroy_window = client, key_ring.rstrip("/"), destroy_window

    def __repr__(self) -> str:
        return f"GcpKms({self.key_ring!r})"

    def _key_path(self, name: str) -> str:
        return name if name.startswith("projects/") else f"{self.key_ring}/cryptoKeys/{name}"

    def _call(self, operation: str, key: str | None, method: str, /, **kwargs: Any) -> Any:
        """Call Cloud KMS, mapping google.api_core errors onto the contract's (the cause is kept)."""
        try:
            return getattr(self.client, method)(**kwargs)
        except gexc.GoogleAPICallError as exc:
            kind = next((ours for theirs, ours in _ERRORS if isinstance(exc, theirs)), BackendError)
            raise kind("gcp-kms", operation, key, f"{type(exc).__name__}: {exc.message}") from exc

    def _versions(self, operation: str, name: str) -> list[Any]:
        pager = self._call(operation, name, "list_crypto_key_versions", request={"parent": self._key_path(name)})
        return sorted(pager, key=lambda v: _number(v.name))

    def _load(self, operation: str, name: str) -> tuple[Any, list[Any]]:
        key = self._call(operation, name, "get_crypto_key", name=self._key_path(name))
        return key, self._versions(operation, name)

    @staticmethod
    def _current(key: Any, versions: list[Any]) -> Any | None:
        """The primary version of a symmetric key; the newest live version of an asymmetric one."""
        if key.primary and key.primary.name:
            return next((v for v in versions if v.name == key.primary.name), key.primary)
        live = [v for v in versions if v.state in (VState.ENABLED, VState.DISABLED)]
        return live[-1] if live else (versions[-1] if versions else None)

    @staticmethod
    def _state(current: Any | None, versions: list[Any]) -> KeyState:
        states = {v.state for v in versions}
        if not versions:  # an import-only key before its first import: no material yet
            return KeyState.PRE_ACTIVATION
        if states <= {VState.DESTROYED}:
            return KeyState.DESTROYED
        if VState.DESTROY_SCHEDULED in states and VState.ENABLED not in states:
            return KeyState.DEACTIVATED
        if states <= {VState.PENDING_GENERATION, VState.PENDING_IMPORT}:
            return KeyState.PRE_ACTIVATION
        if current is not None and current.state == VState.ENABLED:
            return KeyState.ACTIVE
        return KeyState.SUSPENDED

    def _info(self, key: Any, versions: list[Any]) -> KeyInfo:
        current = self._current(key, versions)
        algorithm = _ALGORITHM_OF.get(Algo(key.version_template.algorithm).name)
        scheduled = [v.destroy_time for v in versions if v.state == VState.DESTROY_SCHEDULED and v.destroy_time]
        labels = dict(key.labels)
        return KeyInfo(
            ref=KeyRef.gcp(key.name)[0],
            key_type=labels.pop("kmo-key-type", None),
            algorithm=algorithm,
            key_size=ALGORITHMS[algorithm][1] if algorithm else None,
            created_at=key.create_time or None,
            version=_number(current.name) if current is not None else None,
            state=self._state(current, versions),
            destroy_at=max(scheduled) if scheduled and not any(v.state == VState.ENABLED for v in versions) else None,
            versions=[_number(v.name) for v in versions],
            labels=labels | {"gcp_purpose": Purpose(key.purpose).name},
            current_since=(current.create_time or None) if current is not None else None,
        )

    def describe(self, name: str) -> KeyInfo:
        return self._info(*self._load("describe", name))

    def list_keys(self) -> list[KeyInfo]:
        keys = self._call("list", None, "list_crypto_keys", request={"parent": self.key_ring})
        return [self._info(k, self._versions("list", k.name)) for k in keys]

    def generate(self, spec: KeySpec) -> KeyInfo:
        require(self, Capability.GENERATE, spec.name)
        purpose, algorithm = _purpose("generate", spec)
        no_pre_activation("gcp-kms", spec)
        try:
            existing = self.describe(spec.name)
        except KeyNotFound:
            existing = None
        if existing is not None:
            if existing.algorithm != spec.algorithm or existing.state is not KeyState.ACTIVE:
                raise InvalidKeyState("gcp-kms", "generate", spec.name, "a different or retired key has this name")
            return existing  # idempotent
        body = {
            "purpose": purpose,
            "version_template": {"algorithm": algorithm, "protection_level": kms.ProtectionLevel.SOFTWARE},
            "labels": {"kmo-key-type": spec.key_type, **spec.labels},
            "destroy_scheduled_duration": self.destroy_window,
        }
        key = self._call(
            "generate",
            spec.name,
            "create_crypto_key",
            request={"parent": self.key_ring, "crypto_key_id": spec.name, "crypto_key": body},
        )
        return self._info(key, self._versions("generate", spec.name))

    def rotate(self, name: str) -> KeyInfo:
        """A new version; on a symmetric key it becomes primary (earlier versions still decrypt)."""
        require(self, Capability.ROTATE, name)
        key, versions = self._load("rotate", name)
        state = self._state(self._current(key, versions), versions)
        if state is not KeyState.ACTIVE:
            raise InvalidKeyState("gcp-kms", "rotate", name, f"only active keys rotate (this one is {state})")
        new = self._call("rotate", name, "create_crypto_key_version", parent=key.name, crypto_key_version={})
        if key.purpose == Purpose.ENCRYPT_DECRYPT:
            version_id = new.name.rsplit("/", 1)[-1]
            self._call(
                "rotate", name, "update_crypto_key_primary_version", name=key.name, crypto_key_version_id=version_id
            )
        return self.describe(name)

    def set_rotation_period(self, name: str, period: timedelta) -> KeyInfo:
        """Automatic rotation every ``period`` (symmetric keys; at least a day)."""
        key = self._call("rotation_config", name, "get_crypto_key", name=self._key_path(name))
        if key.purpose != Purpose.ENCRYPT_DECRYPT:
            raise Unsupported("gcp-kms", "rotation_config", name, "Cloud KMS rotates only symmetric keys automatically")
        if period < timedelta(days=1):
            raise Unsupported("gcp-kms", "rotation_config", name, "Cloud KMS rotation periods are at least one day")
        update = {"name": key.name, "rotation_period": period, "next_rotation_time": datetime.now(UTC) + period}
        mask = field_mask_pb2.FieldMask(paths=["rotation_period", "next_rotation_time"])
        self._call("rotation_config", name, "update_crypto_key", crypto_key=update, update_mask=mask)
        return self.describe(name)

    def rollback(self, name: str, to_version: int) -> KeyInfo:
        """Point a symmetric key's primary back at an earlier, still enabled version."""
        require(self, Capability.ROLLBACK, name)
        key, versions = self._load("rollback", name)
        if key.purpose != Purpose.ENCRYPT_DECRYPT:
            raise Unsupported("gcp-kms", "rollback", name, "only symmetric Cloud KMS keys have a primary version")
        target = next((v for v in versions if _number(v.name) == to_version), None)
        if target is None or target.state != VState.ENABLED:
            raise InvalidKeyState("gcp-kms", "rollback", name, f"version {to_version} is not an enabled version")
        self._call(
            "rollback", name, "update_crypto_key_primary_version", name=key.name, crypto_key_version_id=str(to_version)
        )
        return self.describe(name)

    # -- distribution (actions/distribution.py): Cloud KMS import jobs -------------------------------
    def import_key(self) -> bytes:
        """An import job's public key (RSA_OAEP_3072_SHA256_AES_256: the same envelope kmo wraps with).
        One job per ring per day is reused; Cloud KMS expires jobs after three days."""
        job_id = f"kmo-import-{datetime.now(UTC):%Y%m%d}"
        name = f"{self.key_ring}/importJobs/{job_id}"
        try:
            job = self._call("import", None, "get_import_job", name=name)
        except KeyNotFound:
            job = self._call(
                "import",
                None,
                "create_import_job",
                request={
                    "parent": self.key_ring,
                    "import_job_id": job_id,
                    "import_job": {
                        "import_method": kms.ImportJob.ImportMethod.RSA_OAEP_3072_SHA256_AES_256,
                        "protection_level": kms.ProtectionLevel.SOFTWARE,
                    },
                },
            )
        if job.state != kms.ImportJob.ImportJobState.ACTIVE:
            raise BackendUnavailable("gcp-kms", "import", None, f"import job {name} is {job.state.name}, not ACTIVE")
        self._import_job = job.name
        return job.public_key.pem.encode()

    def import_wrapped(self, spec: KeySpec, envelope: bytes, *, source: str) -> KeyInfo:
        """Into an import-only key created for it; the imported version is enabled by Cloud KMS (it has
        no pre-activation state), and on a symmetric key kmo makes it primary."""
        job = getattr(self, "_import_job", None)
        if job is None:
            raise InvalidKeyState("gcp-kms", "import", spec.name, "no import job: call import_key first")
        purpose, algorithm = _purpose("import", spec)
        try:
            self.describe(spec.name)
        except KeyNotFound:
            pass
        else:
            raise InvalidKeyState("gcp-kms", "import", spec.name, "a key with this name exists")
        body = {
            "purpose": purpose,
            "version_template": {"algorithm": algorithm, "protection_level": kms.ProtectionLevel.SOFTWARE},
            "labels": {"kmo-key-type": spec.key_type, **spec.labels},
            "import_only": True,
            "destroy_scheduled_duration": self.destroy_window,
        }
        key = self._call(
            "import",
            spec.name,
            "create_crypto_key",
            request={
                "parent": self.key_ring,
                "crypto_key_id": spec.name,
                "crypto_key": body,
                "skip_initial_version_creation": True,
            },
        )
        version = self._call(
            "import",
            spec.name,
            "import_crypto_key_version",
            request={"parent": key.name, "algorithm": algorithm, "import_job": job, "wrapped_key": envelope},
        )
        if purpose == Purpose.ENCRYPT_DECRYPT:
            version_id = version.name.rsplit("/", 1)[-1]
            self._call(
                "import",
                spec.name,
                "update_crypto_key_primary_version",
                name=key.name,
                crypto_key_version_id=version_id,
            )
        return self.describe(spec.name)

    def _set_version_state(self, operation: str, name: str, version: Any, state: Any) -> None:
        mask = field_mask_pb2.FieldMask(paths=["state"])
        self._call(
            operation,
            name,
            "update_crypto_key_version",
            crypto_key_version={"name": version.name, "state": state},
            update_mask=mask,
        )

    def disable(self, name: str) -> KeyInfo:
        """Suspend every enabled version, so nothing encrypts, decrypts or signs with the key."""
        require(self, Capability.DISABLE, name)
        key, versions = self._load("disable", name)
        check_transition("gcp-kms", name, self._state(self._current(key, versions), versions), KeyState.SUSPENDED)
        for version in versions:
            if version.state == VState.ENABLED:
                self._set_version_state("disable", name, version, VState.DISABLED)
        return self.describe(name)

    def enable(self, name: str) -> KeyInfo:
        """Re-enable the disabled versions; a key with versions scheduled for destruction is refused."""
        require(self, Capability.ENABLE, name)
        key, versions = self._load("enable", name)
        if any(v.state == VState.DESTROY_SCHEDULED for v in versions):
            raise InvalidKeyState("gcp-kms", "enable", name, "cancel the scheduled destruction first")
        check_transition("gcp-kms", name, self._state(self._current(key, versions), versions), KeyState.ACTIVE)
        for version in versions:
            if version.state == VState.DISABLED:
                self._set_version_state("enable", name, version, VState.ENABLED)
        return self.describe(name)

    def schedule_destroy(self, name: str, pending: timedelta) -> KeyInfo:
        """Destroy every live version after the key's destroy-scheduled duration.

        The duration was fixed when the key was made; a request for a longer window is refused,
        because Cloud KMS would destroy the key before the window approved for it ends.
        """
        require(self, Capability.SCHEDULE_DESTROY, name)
        key, versions = self._load("schedule_destroy", name)
        configured = key.destroy_scheduled_duration or timedelta(days=30)  # unset means GCP's default
        if pending > configured:
            raise Unsupported(
                "gcp-kms",
                "schedule_destroy",
                name,
                f"this key's destroy-scheduled duration is {configured.days} days (fixed at creation); "
                f"Cloud KMS cannot hold it for {pending.days}",
            )
        state = self._state(self._current(key, versions), versions)
        if state is not KeyState.DEACTIVATED:
            check_transition("gcp-kms", name, state, KeyState.DEACTIVATED)
            for version in versions:
                if version.state in (VState.ENABLED, VState.DISABLED):
                    self._call("schedule_destroy", name, "destroy_crypto_key_version", name=version.name)
        return self.describe(name)

    def cancel_destroy(self, name: str) -> KeyInfo:
        """Restore every scheduled version; Cloud KMS leaves them DISABLED, and so does kmo."""
        require(self, Capability.CANCEL_DESTROY, name)
        _key, versions = self._load("cancel_destroy", name)
        for version in versions:
            if version.state == VState.DESTROY_SCHEDULED:
                self._call("cancel_destroy", name, "restore_crypto_key_version", name=version.name)
        return self.describe(name)
