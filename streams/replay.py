"""``kmo detect``: the detection engine over log files, no broker. The same rules and engine as
the stream worker; absence rules run once, as of ``now`` (default: the newest event seen)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ingest.schema import KeyEvent
from streams.engine import Engine, RuleError, all_findings
from streams.findings import Finding
from streams.inventory import Inventory
from streams.policy import Policy
from streams.rules import load_rules
from streams.rules.base import LateEvents, MemoryState


@dataclass
class ReplayResult:
    findings: list[Finding]
    events: int
    errors: list[RuleError] = field(default_factory=list)
    newest: datetime | None = None
    late: LateEvents = field(default_factory=LateEvents)  # window rules' events out of time order


def replay(
    events: Iterable[KeyEvent],
    *,
    policy: Policy,
    inventory: Inventory,
    now: datetime | None = None,
    batch: int = 1000,
) -> ReplayResult:
    stores: dict[str, MemoryState] = {}
    engine = Engine(
        load_rules(),
        policy=policy,
        inventory=inventory,
        state=lambda scope, bucket: stores.setdefault(scope, MemoryState()),
    )
    newest: datetime | None = None
    chunk: list[KeyEvent] = []
    for event in events:
        newest = event.time if newest is None or event.time > newest else newest
        chunk.append(event)
        if len(chunk) >= batch:
            engine.process(chunk)
            chunk = []
    engine.process(chunk)
    when = now or newest
    if when is not None:
        engine.absences(when)
    docs: list[dict[str, Any]] = [d for store in stores.values() for d in all_findings(store)]
    findings = sorted((Finding.from_ocsf(d) for d in docs), key=lambda f: (f.first_seen, f.rule_id, f.uid))
    return ReplayResult(findings, engine.events_seen, engine.errors, newest, engine.late)
