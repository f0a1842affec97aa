"""What a detection rule is. Plain Python: nothing here imports Faust or Kafka, so the same rule
runs in the stream worker, in ``kmo detect`` replay over files, and in unit tests.

A rule module defines ``RULE`` (metadata), ``match(event, ctx) -> Hit | None`` and ``CASES``
(positive and negative examples built from raw fixtures, run through the real parsers). Stateful
rules keep state in ``ctx.state`` (a Faust table in the stream, a dict in replay) under keys they
build from the event, and reason in **event time**, never arrival order, so a replay and a stream
reach the same findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ingest.schema import KeyOp
from streams.findings import Action, AnalyticType, Category, Severity

Scope = Literal["event", "key", "principal", "absence"]


class StateStore(Protocol):
    """Per-scope state: a Faust table in the worker, a dict in replay. Values must be JSON-able."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def __setitem__(self, key: str, value: Any) -> None: ...

    def keys(self) -> Any: ...


class MemoryState(dict):  # type: ignore[type-arg]
    """The replay and test state store."""


@dataclass(frozen=True)
class Rule:
    """Declarative metadata; the engine does the rest (indexing by op, dedup windows, isolation)."""

    id: str  # "<scope>.<behaviour>", the module is <scope>_<behaviour>.py
    title: str
    severity: Severity
    category: Category
    action: Action
    ops: frozenset[KeyOp] | None  # the operations it looks at; None = all
    scope: Scope = "event"  # which partitioning its state needs (see streams/engine.py)
    attack: tuple[str, ...] = ()  # MITRE ATT&CK techniques
    runbook: str = ""
    false_positives: str = ""
    covers: tuple[str, ...] = ()  # rows of ../shared/design/detections.md ("#6") and gaps ("gap:...")
    dedup_seconds: int = 3600  # one finding per dedup key per window
    analytic: AnalyticType = AnalyticType.RULE


@dataclass
class Hit:
    """A rule's verdict on one event."""

    dedup: str  # what makes two hits the same finding (within the rule's window)
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    actor: str | None = None  # defaults to the event's principal
    keys: list[str] | None = None  # defaults to the event's keys


@dataclass
class LateEvents:
    """How far out of event-time order a window rule's events arrived (one tally per engine).

    ``behind``: events whose window was older than the newest of their series; ``uncounted``: of
    those, the ones whose window the series had already let go, so they counted alone
    (streams.rules.helpers.window_count); ``max_seconds``: the most any event was behind. The
    worker reports them: a window that missed events is a burst that may have gone unseen, and the
    operator is told rather than left to guess.
    """

    behind: int = 0
    uncounted: int = 0
    max_seconds: int = 0


@dataclass
class Context:
    """What a rule may consult besides the event."""

    state: StateStore
    policy: Any  # streams.policy.Policy
    inventory: Any  # streams.inventory.Inventory
    late: LateEvents = field(default_factory=LateEvents)  # the engine's tally, shared by its rules


@dataclass(frozen=True)
class Case:
    """An example for the rule: raw fixture records (patched), parsed by the real parser, in order.

    ``steps`` are (fixture path under tests/fixtures, patch applied to the parsed record, repeat).
    A patch maps dotted paths to values; ``None`` deletes the field.
    """

    name: str
    steps: tuple[tuple[str, dict[str, Any], int], ...]
    fires: bool
    policy: dict[str, Any] = field(default_factory=dict)  # overrides of the default policy
    inventory: tuple[dict[str, Any], ...] = ()  # inventory records (absence rules)
    now: str | None = None  # absence rules run "as of" this time


def step(fixture: str, patch: dict[str, Any] | None = None, repeat: int = 1) -> tuple[str, dict[str, Any], int]:
    return (fixture, patch or {}, repeat)
