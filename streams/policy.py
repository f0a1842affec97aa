"""The key policy detections enforce: loaded from YAML, validated field by field, with defaults.

Why hand-written validation: a typo in a security policy must fail loudly and name the field; a
schema library would add a dependency for twenty fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


class PolicyError(ValueError):
    """The policy file is wrong; the message names the field."""


_INT_MAP = ("rotation_days",)
_WINDOWED = {
    "usage_spike": {"window_seconds": int, "min_events": int, "factor": float},
    "error_burst": {"window_seconds": int, "min_errors": int, "min_keys": int},
    "secret_mass_read": {"window_seconds": int, "min_reads": int},
    "failed_login_burst": {"window_seconds": int, "min_failures": int},
    "grant_revoke_burst": {"window_seconds": int, "min_revocations": int},
    "storage_agent_bulk_encrypt": {"window_seconds": int, "min_encrypts": int},
    "s3_reencrypt_burst": {"window_seconds": int, "min_objects": int},
    "unusual_hours": {"start": int, "end": int},
}
_SCALARS = {
    "orphan_days": int,
    "min_pending_window_days": int,
    "max_operations_per_version": int,
    "usage_warn_fraction": float,
    "new_principal_learning_days": int,
    "disable_revert_minutes": int,
    "min_rsa_bits": int,
    "response_max_actions_per_hour": int,
    "response_max_consecutive_failures": int,
}
_LISTS = ("approved_principals", "allowed_accounts", "disallowed_algorithms")


@dataclass(frozen=True)
class Policy:
    rotation_days: dict[str, int]
    orphan_days: int
    min_pending_window_days: int
    max_operations_per_version: int
    usage_warn_fraction: float
    approved_principals: tuple[str, ...]
    allowed_accounts: tuple[str, ...]
    unusual_hours: dict[str, int]
    usage_spike: dict[str, Any]
    new_principal_learning_days: int
    error_burst: dict[str, int]
    secret_mass_read: dict[str, int]
    failed_login_burst: dict[str, int]
    grant_revoke_burst: dict[str, int]
    storage_agent_bulk_encrypt: dict[str, int]
    s3_reencrypt_burst: dict[str, int]
    disable_revert_minutes: int
    disallowed_algorithms: tuple[str, ...]
    min_rsa_bits: int
    # rule id -> what the responder may do on its own (rotate or disable; never destroy)
    auto_response: dict[str, str] = field(default_factory=dict)
    response_mode: str = "observe"  # observe (log only) | propose (pending for a human) | enforce
    response_max_actions_per_hour: int = 10  # over it, enforce degrades to propose
    response_max_consecutive_failures: int = 3  # then the responder stops acting (circuit open)
    source: str = field(default="default", compare=False)

    def unusual_hour(self, hour: int) -> bool:
        start, end = self.unusual_hours["start"], self.unusual_hours["end"]
        return hour >= start or hour < end if start > end else start <= hour < end


def _number(value: Any, kind: type, name: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise PolicyError(f"{name} must be a{'n integer' if kind is int else ' number'}, got {value!r}")
    if value < 0:
        raise PolicyError(f"{name} must not be negative, got {value!r}")
    return kind(value)


def parse_policy(doc: Any, *, base: dict[str, Any] | None = None, source: str = "default") -> Policy:
    """Validate a policy document (merged over ``base``). Raises :class:`PolicyError`."""
    if not isinstance(doc, dict):
        raise PolicyError("a policy is a YAML mapping")
    merged: dict[str, Any] = dict(base or {})
    known = set(_INT_MAP) | set(_WINDOWED) | set(_SCALARS) | set(_LISTS) | {"auto_response", "response_mode"}
    for key, value in doc.items():
        if key not in known:
            raise PolicyError(f"unknown policy field {key!r}; known: {', '.join(sorted(known))}")
        merged[key] = value
    out: dict[str, Any] = {}
    for key in _INT_MAP:
        value = merged.get(key)
        if not isinstance(value, dict):
            raise PolicyError(f"{key} must map key types to days")
        out[key] = {str(k): _number(v, int, f"{key}.{k}") for k, v in value.items()}
    for key, fields in _WINDOWED.items():
        value = merged.get(key)
        if not isinstance(value, dict) or set(value) != set(fields):
            raise PolicyError(f"{key} must have exactly {', '.join(fields)}")
        out[key] = {f: _number(value[f], kind, f"{key}.{f}") for f, kind in fields.items()}
    for key, kind in _SCALARS.items():
        out[key] = _number(merged.get(key), kind, key)
    for key in _LISTS:
        value = merged.get(key)
        if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
            raise PolicyError(f"{key} must be a list of strings")
        out[key] = tuple(str(v) for v in value)
    out["auto_response"] = _auto_response(merged.get("auto_response") or {})
    out["response_mode"] = merged.get("response_mode", "observe")
    if out["response_mode"] not in RESPONSE_MODES:
        raise PolicyError(f"response_mode must be one of {', '.join(RESPONSE_MODES)}, got {out['response_mode']!r}")
    for hour in ("start", "end"):
        if not 0 <= out["unusual_hours"][hour] <= 23:
            raise PolicyError(f"unusual_hours.{hour} must be an hour 0-23")
    return Policy(**out, source=source)


AUTO_ACTIONS = ("rotate", "disable")
RESPONSE_MODES = ("observe", "propose", "enforce")


def _auto_response(value: Any) -> dict[str, str]:
    """Which findings the responder acts on by itself. Destruction is never automatic: not allowed here."""
    from streams.rules import load_rules  # the rules import this module's neighbours; load lazily

    if not isinstance(value, dict):
        raise PolicyError("auto_response must map rule ids to rotate or disable")
    if not value:
        return {}  # the usual case: no need to import every rule to check nothing
    rule_ids = {m.RULE.id for m in load_rules()}
    for rule_id, action in value.items():
        if rule_id not in rule_ids:
            raise PolicyError(f"auto_response: unknown rule {rule_id!r}")
        if action not in AUTO_ACTIONS:
            raise PolicyError(
                f"auto_response.{rule_id}: {action!r} is not allowed; use one of {', '.join(AUTO_ACTIONS)}"
            )
    return {str(k): str(v) for k, v in value.items()}


def _default_doc() -> dict[str, Any]:
    return yaml.safe_load(resources.files("streams").joinpath("default_policy.yaml").read_text())


def load_policy(path: str | Path | None = None) -> Policy:
    """The shipped default, or a file whose fields override it."""
    default = _default_doc()
    if path is None:
        return parse_policy(default)
    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"cannot read policy {path}: {exc}") from None
    return parse_policy(doc, base=default, source=str(path))


def policy_with(overrides: dict[str, Any]) -> Policy:
    """The default policy with some fields replaced (tests, and callers building a policy in code)."""
    return parse_policy(overrides, base=_default_doc(), source="default+overrides")
