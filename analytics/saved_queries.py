"""Saved queries: the questions analysts and auditors ask again and again, one file each in
``sql/queries/``, run by ``kmo query --saved NAME --param k=v``.

Each file starts with a header of ``-- key: value`` lines::

    -- name: usage_by_key            (the file's stem)
    -- answers: the question, in one line
    -- param: since timestamp  start of the window (inclusive)
    -- example: since=2026-11-01T00:00:00Z

Parameters are bound as ``$name`` (never formatted into the SQL) after their value has been checked
against the declared type; timestamps are normalised to UTC ISO 8601 and cast in the SQL. The
``example`` line is what CI runs every saved query with, against a fixture warehouse.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import pyarrow as pa

from ingest.schema import format_timestamp, parse_timestamp
from kmo.settings import Settings

TYPES = ("timestamp", "text", "int")
_HEADER = re.compile(r"^--\s*(name|answers|param|example):\s*(.*)$")


class SavedQueryError(ValueError):
    """An unknown query, or parameters that do not fit it; the message names which."""


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    description: str


@dataclass(frozen=True)
class SavedQuery:
    name: str
    answers: str
    sql: str
    params: tuple[Param, ...] = ()
    example: dict[str, str] = field(default_factory=dict)

    def bind(self, given: dict[str, str]) -> dict[str, Any]:
        """Check ``given`` against the declared parameters and convert each to its type."""
        declared = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(declared))
        missing = sorted(set(declared) - set(given))
        if unknown or missing:
            parts = ([f"unknown {', '.join(unknown)}"] if unknown else []) + (
                [f"missing {', '.join(missing)}"] if missing else []
            )
            expects = ", ".join(f"{p.name} ({p.type})" for p in self.params) or "no parameters"
            raise SavedQueryError(f"{self.name}: {'; '.join(parts)} (it takes {expects})")
        return {name: _convert(self.name, declared[name], value) for name, value in given.items()}


def _convert(query: str, param: Param, value: str) -> Any:
    try:
        if param.type == "timestamp":
            return format_timestamp(parse_timestamp(value))
        if param.type == "int":
            return int(value)
    except ValueError:
        raise SavedQueryError(f"{query}: {param.name} must be a {param.type}, not {value[:60]!r}") from None
    return value


def parse(name: str, text: str) -> SavedQuery:
    """A saved query from its file's text; the header must name it and declare every ``$param``."""
    fields: dict[str, Any] = {"params": [], "example": {}}
    body: list[str] = []
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m and not body:
            key, value = m.group(1), m.group(2).strip()
            if key == "param":
                pname, ptype, *desc = value.split(None, 2)
                if ptype not in TYPES:
                    raise SavedQueryError(f"{name}: parameter {pname} has unknown type {ptype!r}")
                fields["params"].append(Param(pname, ptype, desc[0] if desc else ""))
            elif key == "example":
                fields["example"] = dict(pair.split("=", 1) for pair in value.split())
            else:
                fields[key] = value
        elif line.strip() or body:
            body.append(line)
    sql = "\n".join(body).strip()
    if fields.get("name") != name or not fields.get("answers") or not sql:
        raise SavedQueryError(f"{name}: the header needs 'name: {name}' and 'answers:', then the SQL")
    used = set(re.findall(r"\$([a-z_][a-z0-9_]*)", sql))
    declared = {p.name for p in fields["params"]}
    if used != declared:
        raise SavedQueryError(f"{name}: the SQL uses {sorted(used)} but the header declares {sorted(declared)}")
    return SavedQuery(name, fields["answers"], sql, tuple(fields["params"]), fields["example"])


@functools.cache
def load_all() -> dict[str, SavedQuery]:
    """Every saved query shipped in ``sql/queries``, by name (read once: they ship with the package,
    and the model's live scoring asks for its feature query on every hour it closes)."""
    found = {}
    for entry in sorted(resources.files("sql").joinpath("queries").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            stem = entry.name.removesuffix(".sql")
            found[stem] = parse(stem, entry.read_text())
    return found


def get(name: str) -> SavedQuery:
    queries = load_all()
    if name not in queries:
        raise SavedQueryError(f"no saved query {name!r} (saved: {', '.join(queries)})")
    return queries[name]


def command(name: str, **params: str) -> str:
    """The ``kmo query`` command that reruns a saved query: what reports give as evidence."""
    return f"kmo query --saved {name} " + " ".join(f"--param {k}={v}" for k, v in params.items())


def run_saved(settings: Settings, name: str, given: dict[str, str]) -> pa.Table:
    """Run a saved query with its parameters bound (through the sink's socket when it runs)."""
    from analytics.query import run_query

    query = get(name)
    return run_query(settings, query.sql, query.bind(given))
