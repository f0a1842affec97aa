"""Azure Key Vault (and Managed HSM), through azure-keyvault-keys.

Azure facts this adapter builds on (learn.microsoft.com/azure/key-vault/keys): a key is a name with
versions; the newest version is the current one and there is no way to point a key back at an
earlier version, so no rollback. Enabled is a per-version attribute. Vaults support RSA and EC
keys; symmetric (``oct-HSM``) keys exist only in a Managed HSM; there are no Ed25519 keys.
Deleting a key in a vault with soft-delete moves it to the deleted collection until its
``scheduledPurgeDate`` (the vault's retention, 7-90 days), when Azure purges it; until then it
can be recovered. A vault without soft-delete destroys on delete, so kmo refuses to schedule there.

kmo maps this onto SP 800-57: current version enabled -> active; disabled -> suspended; in the
deleted collection -> deactivated, pending destruction; purged -> gone. Version numbers are
kmo's ordinals (1 = oldest) over the versions' creation times, since Azure's version ids are
opaque; Azure records creation to the second, so versions made within one second are ordered with
the current version last and the rest by id. ``disable`` suspends every enabled version and marks
them, so ``enable`` re-enables exactly those (plus the current version). A key recovered from
scheduled destruction comes back suspended, as AWS and Cloud KMS leave theirs: re-enabling it is a
separate, deliberate step.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.keyvault.keys import KeyCurveName

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

VAULT_ALGORITHMS = frozenset({"RSA-2048", "RSA-4096", "ECDSA-P256", "ECDSA-P384"})
MANAGED_HSM_ALGORITHMS = VAULT_ALGORITHMS | {"AES-256"}
SUSPENDED_TAG = "kmo-suspended"  # on versions kmo disabled, so enable restores exactly those
_KMO_TAGS = frozenset({"kmo-key-type", "kmo-algorithm", SUSPENDED_TAG})  # kmo's bookkeeping, not labels
_CURVES = {"ECDSA-P256": KeyCurveName.p_256, "ECDSA-P384": KeyCurveName.p_384}
_ALGORITHM_OF_CURVE = {"P-256": "ECDSA-P256", "P-384": "ECDSA-P384"}


def _kty(key: Any) -> str:
    """The JSON Web Key type (``RSA``, ``EC-HSM``, ``oct-HSM``, ...) as text."""
    return str(getattr(key.key_type, "value", key.key_type) or "")


def _status_error(status: int | None) -> type[BackendError]:
    if status in (401, 403):
        return PermissionDenied
    if status == 404:
        return KeyNotFound
    if status == 409:
        return InvalidKeyState
    if status == 429:
        return Throttled
    if status is not None and status >= 500:
        return BackendUnavailable
    return BackendError


class AzureKeyVault(RefusesUndeclared):
    """One vault (or Managed HSM). ``client`` is an ``azure.keyvault.keys.KeyClient``."""

    system: ClassVar[Provider] = Provider.AZURE_KEYVAULT
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.DESCRIBE,
            Capability.LIST,
            Capability.GENERATE,
            Capability.ROTATE,
            Capability.DISABLE,
            Capability.ENABLE,
            Capability.SCHEDULE_DESTROY,
            Capability.CANCEL_DESTROY,
        }
    )
    refusals: ClassVar[dict[Capability, str]] = {
        Capability.ROLLBACK: "Key Vault always uses a key's newest version; an earlier one cannot be made current",
    }

    holds_labels: ClassVar[bool] = True  # as tags

    def __init__(self, client: Any, *, managed_hsm: bool | None = None, hsm_backed: bool = False) -> None:
        where = "Managed HSM" if managed_hsm or ".managedhsm." in client.vault_url else "Key Vault"
        self.generation = {
            "entropy_source": f"{where} key generation (material made inside the service"
            + (", HSM-protected)" if hsm_backed or where == "Managed HSM" else ")"),
            "module": f"Azure {where}",
        }
        self.client = client
        self.managed_hsm = ".managedhsm." in client.vault_url if managed_hsm is None else managed_hsm
        self.hsm_backed = hsm_backed or self.managed_hsm
        self.algorithms = MANAGED_HSM_ALGORITHMS if self.managed_hsm else VAULT_ALGORITHMS

    def __repr__(self) -> str:
        return f"AzureKeyVault({self.client.vault_url!r})"

    def _call(self, operation: str, key: str | None, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call Key Vault, mapping azure-core errors onto the contract's (the cause is kept)."""
        try:
            return getattr(self.client, method)(*args, **kwargs)
        except ResourceNotFoundError as exc:
            raise KeyNotFound("azure-keyvault", operation, key, "not found") from exc
        except ClientAuthenticationError as exc:
            raise PermissionDenied("azure-keyvault", operation, key, "authentication failed") from exc
        except HttpResponseError as exc:
            code = getattr(exc.error, "code", None) or f"HTTP {exc.status_code}"
            raise _status_error(exc.status_code)("azure-keyvault", operation, key, code) from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise BackendUnavailable("azure-keyvault", operation, key, "cannot reach the vault") from exc
        except ValueError as exc:  # the client's own refusals, e.g. a challenge from a non-Azure resource
            raise BackendError("azure-keyvault", operation, key, f"client refused: {str(exc)[:200]}") from exc

    # -- reading -----------------------------------------------------------------------------
    def _versions(self, operation: str, name: str, current_id: str) -> list[Any]:
        """Every version's properties, oldest first (the current version last among equal times)."""
        props = list(self._call(operation, name, "list_properties_of_key_versions", name))
        return sorted(
            props, key=lambda p: (p.created_on or datetime.min.replace(tzinfo=UTC), p.version == current_id, p.version)
        )

    def _algorithm(self, key: Any) -> str | None:
        tagged = (key.properties.tags or {}).get("kmo-algorithm")
        if tagged in ALGORITHMS:
            return tagged
        jwk, kty = key.key, _kty(key)
        if kty.startswith("RSA") and getattr(jwk, "n", None):
            return {2048: "RSA-2048", 4096: "RSA-4096"}.get(len(jwk.n) * 8)
        if kty.startswith("EC") and getattr(jwk, "crv", None):
            return _ALGORITHM_OF_CURVE.get(str(jwk.crv))
        return None

    def _info(self, operation: str, name: str, key: Any) -> KeyInfo:
        versions = self._versions(operation, name, key.properties.version)
        current = key.properties
        tags = dict(current.tags or {})
        algorithm = self._algorithm(key)
        now = datetime.now(UTC)
        if not current.enabled:
            state = KeyState.SUSPENDED
        elif current.not_before and current.not_before > now:
            state = KeyState.PRE_ACTIVATION
        elif current.expires_on and current.expires_on <= now:
            state = KeyState.DEACTIVATED
        else:
            state = KeyState.ACTIVE
        ordinals = {p.version: i for i, p in enumerate(versions, start=1)}
        return KeyInfo(
            ref=KeyRef.azure(key.id)[0],
            key_type=tags.pop("kmo-key-type", None),
            algorithm=algorithm,
            key_size=ALGORITHMS[algorithm][1] if algorithm else None,
            created_at=versions[0].created_on if versions else current.created_on,
            version=ordinals.get(current.version, len(versions)),
            state=state,
            expires_at=current.expires_on,
            versions=list(ordinals.values()),
            labels={k: v for k, v in tags.items() if k not in _KMO_TAGS}
            | {"azure_version": current.version or "", "hsm_backed": str(_kty(key).endswith("-HSM")).lower()},
            current_since=current.created_on,
        )

    def _deleted(self, operation: str, name: str, deleted: Any) -> KeyInfo:
        algorithm = self._algorithm(deleted)
        return KeyInfo(
            ref=KeyRef.azure(deleted.id)[0],
            key_type=(deleted.properties.tags or {}).get("kmo-key-type"),
            algorithm=algorithm,
            key_size=ALGORITHMS[algorithm][1] if algorithm else None,
            created_at=deleted.properties.created_on,
            version=None,
            state=KeyState.DEACTIVATED,
            destroy_at=deleted.scheduled_purge_date,
            labels={"azure_recovery_id": deleted.recovery_id or ""},
        )

    def describe(self, name: str) -> KeyInfo:
        """The live key, or the deleted one awaiting purge (pending destruction)."""
        try:
            return self._info("describe", name, self._call("describe", name, "get_key", name))
        except KeyNotFound:
            deleted = self._call("describe", name, "get_deleted_key", name)  # KeyNotFound once purged
            return self._deleted("describe", name, deleted)

    def list_keys(self) -> list[KeyInfo]:
        out = []
        for props in self._call("list", None, "list_properties_of_keys"):
            if props.managed:  # certificate-backed keys belong to their certificate
                continue
            out.append(self._info("list", props.name, self._call("list", props.name, "get_key", props.name)))
        return out

    # -- changing ----------------------------------------------------------------------------
    def generate(self, spec: KeySpec) -> KeyInfo:
        require(self, Capability.GENERATE, spec.name)
        no_pre_activation("azure-keyvault", spec)
        if spec.algorithm not in self.algorithms:
            where = "a Managed HSM" if self.managed_hsm else "a key vault (symmetric keys need a Managed HSM)"
            raise Unsupported("azure-keyvault", "generate", spec.name, f"{where} has no {spec.algorithm} keys")
        try:
            existing = self.describe(spec.name)
        except KeyNotFound:
            existing = None
        if existing is not None:
            if existing.algorithm != spec.algorithm or existing.state is not KeyState.ACTIVE:
                raise InvalidKeyState(
                    "azure-keyvault", "generate", spec.name, "a different, disabled or deleted key has this name"
                )
            return existing  # idempotent
        tags = {"kmo-key-type": spec.key_type, "kmo-algorithm": spec.algorithm, **spec.labels}
        common: dict[str, Any] = {"tags": tags, "hardware_protected": self.hsm_backed}
        family, size = ALGORITHMS[spec.algorithm]
        if family == "rsa":
            key = self._call("generate", spec.name, "create_rsa_key", spec.name, size=size, **common)
        elif family == "ec":
            key = self._call("generate", spec.name, "create_ec_key", spec.name, curve=_CURVES[spec.algorithm], **common)
        else:
            key = self._call("generate", spec.name, "create_oct_key", spec.name, size=size, **common)
        return self._info("generate", spec.name, key)

    def _live(self, operation: str, name: str) -> Any:
        """The live key; a deleted one is refused with the reason (cancel its destruction first)."""
        try:
            return self._call(operation, name, "get_key", name)
        except KeyNotFound:
            try:
                self._call(operation, name, "get_deleted_key", name)
            except KeyNotFound:
                raise KeyNotFound("azure-keyvault", operation, name, "not found") from None
            raise InvalidKeyState(
                "azure-keyvault", operation, name, "the key is pending destruction; cancel it first"
            ) from None

    def rotate(self, name: str) -> KeyInfo:
        """A new version becomes current; earlier versions still decrypt and verify."""
        require(self, Capability.ROTATE, name)
        key = self._live("rotate", name)
        state = self._info("rotate", name, key).state
        if state is not KeyState.ACTIVE:
            raise InvalidKeyState("azure-keyvault", "rotate", name, f"only active keys rotate (this one is {state})")
        rotated = self._call("rotate", name, "rotate_key", name)
        return self._info("rotate", name, rotated)

    def set_rotation_period(self, name: str, period: timedelta) -> KeyInfo:
        """Azure rotates the key itself ``period`` after each version is made (at least 7 days)."""
        from azure.keyvault.keys import KeyRotationLifetimeAction, KeyRotationPolicy, KeyRotationPolicyAction

        if period < timedelta(days=7):
            raise Unsupported(
                "azure-keyvault", "rotation_config", name, "Key Vault rotation policies rotate at least 7 days apart"
            )
        self._live("rotation_config", name)
        action = KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create=f"P{period.days}D")
        self._call(
            "rotation_config", name, "update_key_rotation_policy", name, KeyRotationPolicy(lifetime_actions=[action])
        )
        return self.describe(name)

    def _set_enabled(self, operation: str, name: str, version: Any, enabled: bool) -> None:
        tags = dict(version.tags or {})
        if enabled:
            tags.pop(SUSPENDED_TAG, None)
        else:
            tags[SUSPENDED_TAG] = "true"
        self._call(operation, name, "update_key_properties", name, version.version, enabled=enabled, tags=tags)

    def disable(self, name: str) -> KeyInfo:
        """Suspend every enabled version, so no version of the key can be used."""
        require(self, Capability.DISABLE, name)
        key = self._live("disable", name)
        check_transition("azure-keyvault", name, self._info("disable", name, key).state, KeyState.SUSPENDED)
        for version in self._versions("disable", name, key.properties.version):
            if version.enabled:
                self._set_enabled("disable", name, version, False)
        return self.describe(name)

    def enable(self, name: str) -> KeyInfo:
        require(self, Capability.ENABLE, name)
        key = self._live("enable", name)
        check_transition("azure-keyvault", name, self._info("enable", name, key).state, KeyState.ACTIVE)
        for version in self._versions("enable", name, key.properties.version):
            marked = (version.tags or {}).get(SUSPENDED_TAG) == "true"
            if not version.enabled and (marked or version.version == key.properties.version):
                self._set_enabled("enable", name, version, True)
        return self.describe(name)

    def schedule_destroy(self, name: str, pending: timedelta) -> KeyInfo:
        """Delete into the soft-deleted collection; Azure purges it at the vault's retention.

        Refused where deletion would not be recoverable (no soft-delete) or where the retention is
        shorter than the approved window (Azure would purge before the window ends).
        """
        require(self, Capability.SCHEDULE_DESTROY, name)
        try:
            key = self._call("schedule_destroy", name, "get_key", name)
        except KeyNotFound:
            return self.describe(name)  # idempotent: already deleted (or KeyNotFound if purged)
        days = key.properties.recoverable_days
        if not days:
            raise Unsupported(
                "azure-keyvault",
                "schedule_destroy",
                name,
                f"this vault has no soft-delete (recovery level {key.properties.recovery_level}); "
                "deleting would destroy the key at once",
            )
        if pending > timedelta(days=days):
            raise Unsupported(
                "azure-keyvault",
                "schedule_destroy",
                name,
                f"this vault keeps deleted keys {days} days; Azure would purge before a {pending.days}-day window ends",
            )
        check_transition("azure-keyvault", name, self._info("schedule_destroy", name, key).state, KeyState.DEACTIVATED)
        self._call("schedule_destroy", name, "begin_delete_key", name, _polling_interval=0.2).result()
        return self.describe(name)

    def cancel_destroy(self, name: str) -> KeyInfo:
        """Recover the deleted key; it comes back suspended (re-enabling is a separate step)."""
        require(self, Capability.CANCEL_DESTROY, name)
        try:
            self._call("cancel_destroy", name, "get_deleted_key", name)
        except KeyNotFound:
            return self.describe(name)  # not deleted: nothing to cancel
        self._call("cancel_destroy", name, "begin_recover_deleted_key", name, _polling_interval=0.2).result()
        key = self._call("cancel_destroy", name, "get_key", name)
        for version in self._versions("cancel_destroy", name, key.properties.version):
            if version.enabled:
                self._set_enabled("cancel_destroy", name, version, False)
        return self.describe(name)


class StaticToken:
    """An azure-core credential over one access token obtained elsewhere (``az account
    get-access-token --resource https://vault.azure.net``, a workload's injected token). The token
    is held in memory only and never appears in kmo's output; expiry is the issuer's business."""

    def __init__(self, token: str, expires_in: int = 3600) -> None:
        self._token = token
        self._expires_on = int(datetime.now(UTC).timestamp()) + expires_in

    def __repr__(self) -> str:
        return "StaticToken(<redacted>)"

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, self._expires_on)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo(self._token, self._expires_on)
