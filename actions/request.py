"""Operation requests: the product specification's input schema, validated strictly.

Errors name the field, what was given and what is allowed, because the person reading them is at
a terminal deciding what to type next. Durations (``90d``, ``7d``, ``12h``) parse strictly: a
security policy that silently reads "90" as 90 seconds is worse than one that refuses it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

_DURATION = re.compile(r"^([1-9][0-9]{0,5})([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class RequestError(ValueError):
    """A request that does not follow the schema; the message names every problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@cache
def schema(name: str) -> dict[str, Any]:
    """``request`` or ``response``: the JSON Schema kept in actions/schemas/."""
    return json.loads(resources.files("actions").joinpath("schemas", f"{name}.schema.json").read_text())


def parse_duration(text: Any, field: str = "duration") -> timedelta:
    """``<n><unit>`` with unit s, m, h, d or w, n from 1 to 999999.

    Raises:
        RequestError: for anything else (``90``, ``1.5d``, ``0d``, ``90 days``).
    """
    m = _DURATION.match(text) if isinstance(text, str) else None
    if m is None:
        raise RequestError([f"{field}: {text!r} is not a duration like 90d, 7d, 12h (units: s, m, h, d, w)"])
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def parse_period(text: str) -> tuple[datetime, datetime]:
    """``START/END`` (timestamps), or ``last/Nd`` meaning the N days (or any duration) up to now.

    Raises:
        ValueError: for anything else, or a period that does not end after it starts.
    """
    from ingest.schema import parse_timestamp

    start_text, sep, end_text = text.partition("/")
    if not sep:
        raise ValueError("a period is START/END (timestamps) or last/30d")
    if start_text == "last":
        end = datetime.now(UTC)
        return end - parse_duration(end_text, "period"), end
    start, end = parse_timestamp(start_text), parse_timestamp(end_text)
    if end <= start:
        raise ValueError("the period must end after it starts")
    return start, end


def frameworks() -> tuple[str, ...]:
    """The compliance frameworks the specification names (``complianceFrameworks``), in its order."""
    return tuple(schema("request")["properties"]["complianceFrameworks"]["items"]["enum"])


def _describe(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path) or "request"
    if error.validator == "enum":
        return f"{path}: {error.instance!r} is not allowed; use one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "required":
        return f"{path}: {error.message}"
    if error.validator in ("maxLength", "minLength"):  # never echo an oversized value back
        bound = "longer than" if error.validator == "maxLength" else "shorter than"
        return f"{path}: {len(error.instance)} characters, {bound} the {error.validator_value} allowed"
    if error.validator == "pattern":
        return f"{path}: contains control characters"
    if error.validator == "additionalProperties":
        return f"{path}: {error.message} (allowed: {', '.join(error.schema.get('properties', {}))})"
    return f"{path}: {error.message}"


@dataclass(frozen=True)
class RotationPolicy:
    max_age: timedelta | None
    auto_rotate: bool
    notify_before: timedelta | None


def validate_request(doc: Any) -> dict[str, Any]:
    """Check ``doc`` against the request schema and the duration fields; return it unchanged.

    Raises:
        RequestError: naming every field that is wrong.
    """
    validator = jsonschema.Draft202012Validator(schema("request"))
    problems = [_describe(e) for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))]
    if not problems:
        policy = rotation_policy(doc)
        if policy and policy.max_age and policy.notify_before and policy.notify_before >= policy.max_age:
            problems.append("rotationPolicy.notifyBefore: must be shorter than maxAge")
    if problems:
        raise RequestError(problems)
    return doc


def rotation_policy(doc: dict[str, Any]) -> RotationPolicy | None:
    raw = doc.get("rotationPolicy")
    if not raw:
        return None
    max_age = parse_duration(raw["maxAge"], "rotationPolicy.maxAge") if "maxAge" in raw else None
    notify = parse_duration(raw["notifyBefore"], "rotationPolicy.notifyBefore") if "notifyBefore" in raw else None
    return RotationPolicy(max_age, bool(raw.get("autoRotate", False)), notify)
