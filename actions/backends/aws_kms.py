"""AWS KMS, through boto3.

AWS facts this adapter builds on (docs.aws.amazon.com/kms/latest/developerguide): a key is named here
by its alias (``alias/<name>``) and identified by its ARN; only symmetric keys rotate (automatically
every 90–2560 days, or on demand), and rotation keeps every earlier backing key for decryption;
disabling is reversible; deletion is always scheduled with a 7–30 day pending window and AWS
destroys the key itself at its end, so there is no immediate destroy; cancelling a deletion leaves
the key Disabled. moto (the test server) does not enforce key states, so every state rule is checked
here, before the call, rather than left to the provider.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, ClassVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

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

# kmo algorithm -> (KeySpec, KeyUsage for encryption-type keys, KeyUsage for signing-type keys)
KEY_SPECS = {
    "AES-256": "SYMMETRIC_DEFAULT",
    "RSA-2048": "RSA_2048",
    "RSA-4096": "RSA_4096",
    "ECDSA-P256": "ECC_NIST_P256",
    "ECDSA-P384": "ECC_NIST_P384",
    "Ed25519": "ECC_NIST_EDWARDS25519",
}
_ALGORITHM_OF = {v: k for k, v in KEY_SPECS.items()}
_SIGNING_TYPES = {"signing", "tls"}
_STATES = {
    "Enabled": KeyState.ACTIVE,
    "Disabled": KeyState.SUSPENDED,
    "PendingDeletion": KeyState.DEACTIVATED,
    "PendingReplicaDeletion": KeyState.DEACTIVATED,
    "PendingImport": KeyState.PRE_ACTIVATION,
    "Creating": KeyState.PRE_ACTIVATION,
    "Unavailable": KeyState.SUSPENDED,
    "Updating": KeyState.ACTIVE,
}
_KEY_ID = re.compile(r"^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
_ERRORS: dict[str, type[BackendError]] = {
    "NotFoundException": KeyNotFound,
    "AccessDeniedException": PermissionDenied,
    "KMSInvalidStateException": InvalidKeyState,
    "DisabledException": InvalidKeyState,
    "ThrottlingException": Throttled,
    "LimitExceededException": Throttled,
    "UnsupportedOperationException": Unsupported,
    "KMSInternalException": BackendUnavailable,
    "DependencyTimeoutException": BackendUnavailable,
}
ROTATION_DAYS = (90, 2560)
PENDING_DAYS = (7, 30)


def key_reference(name: str) -> str:
    """What KMS accepts as a KeyId: an ARN or key id unchanged, anything else as an alias name."""
    if name.startswith(("arn:", "alias/")) or _KEY_ID.match(name):
        return name
    return f"alias/{name}"


class AwsKms(RefusesUndeclared):
    """One account and region. ``client`` is a boto3 KMS client (credentials from boto3's usual chain)."""

    system: ClassVar[Provider] = Provider.AWS_KMS
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
    algorithms: ClassVar[frozenset[str]] = frozenset(KEY_SPECS)
    refusals: ClassVar[dict[Capability, str]] = {
        Capability.ROLLBACK: "KMS always encrypts with the newest backing key",
    }

    generation: ClassVar[dict[str, str]] = {
        "entropy_source": "the AWS KMS HSMs' random number generator (key material made inside KMS)",
        "module": "AWS KMS HSMs",
    }

    holds_labels: ClassVar[bool] = True  # as tags

    def __init__(self, client: Any | None = None, **client_kwargs: Any) -> None:
        self.client = client or boto3.client("kms", **client_kwargs)

    def _call(self, operation: str, key: str | None, method: str, /, **kwargs: Any) -> Any:
        """Call KMS, mapping its error codes onto the contract's errors (the cause is kept)."""
        try:
            return getattr(self.client, method)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            raise _ERRORS.get(code, BackendError)("aws-kms", operation, key, code) from exc
        except EndpointConnectionError as exc:
            raise BackendUnavailable("aws-kms", operation, key, "cannot reach the KMS endpoint") from exc
        except BotoCoreError as exc:
            raise BackendError("aws-kms", operation, key, type(exc).__name__) from exc

    def _metadata(self, operation: str, name: str) -> dict[str, Any]:
        return self._call(operation, name, "describe_key", KeyId=key_reference(name))["KeyMetadata"]

    def _info(self, meta: dict[str, Any]) -> KeyInfo:
        algorithm = _ALGORITHM_OF.get(meta.get("KeySpec", ""))
        dates = []
        if meta.get("KeySpec") == "SYMMETRIC_DEFAULT" and meta.get("KeyState") != "PendingDeletion":
            pages = self.client.get_paginator("list_key_rotations").paginate(KeyId=meta["KeyId"])
            dates = [r.get("RotationDate") for page in pages for r in page.get("Rotations", [])]
        rotations = len(dates)
        tags = {
            t["TagKey"]: t["TagValue"]
            for t in self._call("describe", meta["KeyId"], "list_resource_tags", KeyId=meta["KeyId"]).get("Tags", [])
        }
        return KeyInfo(
            ref=KeyRef.aws(meta["Arn"]),
            key_type=tags.get("kmo:key-type"),
            algorithm=algorithm,
            key_size=ALGORITHMS[algorithm][1] if algorithm else None,
            created_at=meta.get("CreationDate"),
            version=rotations + 1,
            state=_STATES.get(meta.get("KeyState", ""), KeyState.SUSPENDED),
            destroy_at=meta.get("DeletionDate"),
            versions=list(range(1, rotations + 2)),
            current_since=max((d for d in dates if d), default=meta.get("CreationDate")),
            labels={k: v for k, v in tags.items() if not k.startswith("kmo:")} | {"aws_key_state": meta["KeyState"]},
        )

    def describe(self, name: str) -> KeyInfo:
        return self._info(self._metadata("describe", name))

    def list_keys(self) -> list[KeyInfo]:
        keys = []
        for page in self.client.get_paginator("list_keys").paginate():
            for entry in page.get("Keys", []):
                meta = self._metadata("list", entry["KeyId"])
                if meta.get("KeyManager") != "AWS":  # AWS-managed keys are AWS's to rotate, not ours
                    keys.append(self._info(meta))
        return keys

    def generate(self, spec: KeySpec) -> KeyInfo:
        require(self, Capability.GENERATE, spec.name)
        no_pre_activation("aws-kms", spec)
        if spec.algorithm not in KEY_SPECS:
            raise Unsupported("aws-kms", "generate", spec.name, f"KMS has no {spec.algorithm} key spec")
        if spec.algorithm == "AES-256" and spec.key_type in _SIGNING_TYPES:
            raise Unsupported("aws-kms", "generate", spec.name, "symmetric KMS keys cannot sign; use ECDSA or RSA")
        try:
            existing = self.describe(spec.name)
        except KeyNotFound:
            existing = None
        if existing is not None:
            if existing.algorithm != spec.algorithm or existing.destroy_at is not None:
                raise InvalidKeyState("aws-kms", "generate", spec.name, "a different or doomed key has this alias")
            return existing  # idempotent
        usage = (
            "SIGN_VERIFY"
            if spec.key_type in _SIGNING_TYPES or spec.algorithm.startswith(("ECDSA", "Ed"))
            else "ENCRYPT_DECRYPT"
        )
        tags = [{"TagKey": "kmo:key-type", "TagValue": spec.key_type}] + [
            {"TagKey": k, "TagValue": v} for k, v in sorted(spec.labels.items())
        ]
        meta = self._call(
            "generate",
            spec.name,
            "create_key",
            KeySpec=KEY_SPECS[spec.algorithm],
            KeyUsage=usage,
            Description=f"kmo {spec.key_type} key {spec.name}",
            Tags=tags,
        )["KeyMetadata"]
        self._call("generate", spec.name, "create_alias", AliasName=f"alias/{spec.name}", TargetKeyId=meta["KeyId"])
        return self._info(meta)

    def rotate(self, name: str) -> KeyInfo:
        """On-demand rotation: a new backing key becomes primary; earlier ones still decrypt."""
        require(self, Capability.ROTATE, name)
        meta = self._metadata("rotate", name)
        if meta.get("KeySpec") != "SYMMETRIC_DEFAULT":
            raise Unsupported("aws-kms", "rotate", name, "KMS rotates only symmetric encryption keys")
        if meta["KeyState"] != "Enabled":
            raise InvalidKeyState(
                "aws-kms", "rotate", name, f"only enabled keys rotate (this one is {meta['KeyState']})"
            )
        self._call("rotate", name, "rotate_key_on_demand", KeyId=meta["KeyId"])
        return self.describe(meta["KeyId"])

    def set_rotation_period(self, name: str, period: timedelta) -> KeyInfo:
        """Automatic rotation every ``period`` (KMS allows 90–2560 days, symmetric keys only)."""
        days = period.days
        if not ROTATION_DAYS[0] <= days <= ROTATION_DAYS[1]:
            raise Unsupported(
                "aws-kms",
                "rotation_config",
                name,
                f"KMS rotates automatically every {ROTATION_DAYS[0]}-{ROTATION_DAYS[1]} days, not {days}; "
                "kmo scheduler must rotate this key on demand",
            )
        meta = self._metadata("rotation_config", name)
        if meta.get("KeySpec") != "SYMMETRIC_DEFAULT":
            raise Unsupported("aws-kms", "rotation_config", name, "KMS rotates only symmetric encryption keys")
        self._call("rotation_config", name, "enable_key_rotation", KeyId=meta["KeyId"], RotationPeriodInDays=days)
        return self._info(meta)

    def disable(self, name: str) -> KeyInfo:
        require(self, Capability.DISABLE, name)
        meta = self._metadata("disable", name)
        if meta["KeyState"] != "Disabled":
            check_transition("aws-kms", name, _STATES[meta["KeyState"]], KeyState.SUSPENDED)
            self._call("disable", name, "disable_key", KeyId=meta["KeyId"])
        return self.describe(meta["KeyId"])

    def enable(self, name: str) -> KeyInfo:
        require(self, Capability.ENABLE, name)
        meta = self._metadata("enable", name)
        if meta["KeyState"] == "PendingDeletion":
            raise InvalidKeyState("aws-kms", "enable", name, "cancel the scheduled deletion first")
        if meta["KeyState"] != "Enabled":
            self._call("enable", name, "enable_key", KeyId=meta["KeyId"])
        return self.describe(meta["KeyId"])

    def schedule_destroy(self, name: str, pending: timedelta) -> KeyInfo:
        """ScheduleKeyDeletion; AWS deletes the key itself when the window ends."""
        require(self, Capability.SCHEDULE_DESTROY, name)
        if not PENDING_DAYS[0] <= pending.days <= PENDING_DAYS[1] or pending % timedelta(days=1):
            raise Unsupported(
                "aws-kms",
                "schedule_destroy",
                name,
                f"KMS pending windows are {PENDING_DAYS[0]}-{PENDING_DAYS[1]} whole days",
            )
        meta = self._metadata("schedule_destroy", name)
        if meta["KeyState"] == "PendingDeletion":
            return self._info(meta)  # idempotent: keep the existing schedule
        check_transition("aws-kms", name, _STATES[meta["KeyState"]], KeyState.DEACTIVATED)
        self._call(
            "schedule_destroy", name, "schedule_key_deletion", KeyId=meta["KeyId"], PendingWindowInDays=pending.days
        )
        return self.describe(meta["KeyId"])

    def cancel_destroy(self, name: str) -> KeyInfo:
        """CancelKeyDeletion: the key comes back Disabled, as AWS leaves it."""
        require(self, Capability.CANCEL_DESTROY, name)
        meta = self._metadata("cancel_destroy", name)
        if meta["KeyState"] == "PendingDeletion":
            self._call("cancel_destroy", name, "cancel_key_deletion", KeyId=meta["KeyId"])
        return self.describe(meta["KeyId"])
