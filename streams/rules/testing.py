"""Run a rule's CASES: raw fixture records, patched, parsed by the real parser, through the engine.

Used by the rule meta-tests; kept in the package so a rule author can run one rule's cases by hand.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

from ingest.framing import decode_bytes
from ingest.parsers import PARSERS, SEQUENCED, RawRecord, framer_for
from ingest.runner import next_gap
from ingest.schema import KeyEvent, parse_timestamp
from streams.engine import Engine
from streams.findings import Finding
from streams.inventory import parse_inventory
from streams.policy import load_policy, policy_with
from streams.rules.base import Case

FIXTURE_SOURCES = {
    "cloudtrail": "aws.cloudtrail",
    "vault": "vault.audit",
    "gcp": "gcp.audit",
    "azure": "azure.keyvault",
    "cloudhsm": "aws.cloudhsm",
    "luna": "thales.luna",
}


def _set(doc: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        doc = doc.setdefault(part, {})
    if value is None:
        doc.pop(parts[-1], None)
    else:
        doc[parts[-1]] = value


_PLACEHOLDER = re.compile(r"\{([ims])(?::(\d+)d)?\}")


def _fill(value: Any, i: int) -> Any:
    """Substitute {i}, {m}, {s} (optionally {i:02d}) in strings: the repeat index, and minutes and
    seconds derived from it. Other braces (JSON inside strings) are left alone."""
    if isinstance(value, str):
        numbers = {"i": i, "m": i // 60, "s": i % 60}
        return _PLACEHOLDER.sub(lambda m: str(numbers[m.group(1)]).zfill(int(m.group(2) or 0)), value)
    if isinstance(value, dict):
        return {k: _fill(v, i) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, i) for v in value]
    return value


def case_events(case: Case, fixtures: Path) -> list[KeyEvent]:
    """The events a case's steps produce, in order (including derived sequence-gap events)."""
    events: list[KeyEvent] = []
    for fixture, patch, repeat in case.steps:
        name, _, index = fixture.partition("#")
        source = FIXTURE_SOURCES[name.split("/")[0]]
        frames = [f for f in framer_for(source)(decode_bytes((fixtures / name).read_bytes()).text) if f.error is None]
        if index:
            frames = [frames[int(index)]]
        for i in range(repeat):
            for frame in frames:
                if frame.obj is not None:
                    obj = copy.deepcopy(frame.obj)
                    for path, value in patch.items():
                        _set(obj, path, _fill(value, i))
                    text = json.dumps(obj)
                else:
                    obj, text = None, frame.text
                    for old_new in patch.values():
                        old, new = old_new.split("=>")
                        text = text.replace(old, new)
                event = PARSERS[source](RawRecord(text, obj, f"case:{case.name}#{i}"))
                if event is not None:
                    events.append(event)
    sequenced = {e.source for e in events} & set(SEQUENCED)
    if sequenced:
        last: dict[tuple[str, int], int] = {}
        out = []
        for e in events:
            gap = next_gap(last, e, SEQUENCED[e.source]) if e.source in SEQUENCED else None
            if gap is not None:
                out.append(gap)
            out.append(e)
        events = out
    return events


def run_case(module: ModuleType, case: Case, fixtures: Path) -> list[Finding]:
    """The findings ``module`` alone produces for ``case``."""
    policy = policy_with(case.policy) if case.policy else load_policy()
    engine = Engine([module], policy=policy, inventory=parse_inventory(list(case.inventory)))
    findings = engine.process(case_events(case, fixtures))
    if engine.errors:
        raise AssertionError(f"{module.RULE.id} raised on case {case.name!r}: {engine.errors[0]}")
    if case.now:
        findings += engine.absences(parse_timestamp(case.now))
    return findings
