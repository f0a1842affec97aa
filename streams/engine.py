"""The detection engine: events in, findings out. No Faust, no Kafka.

* Rules are indexed by the operations they declare, so an event is offered only to rules that
  care about its op.
* A rule that raises is isolated: the error is recorded (rule id, event uid, exception type; never
  the event's content) and the other rules go on. A broken rule is visible, not silent.
* Hits become findings with a deterministic uid (rule, dedup key, event-time window). Finding state
  lives in the scope's state store, so a finding keeps growing across batches and restarts, and is
  re-published under the same uid rather than duplicated.
* Scopes tell the stream worker how to partition: ``event`` and ``key`` rules run on the events
  topic (keyed by key uri), ``principal`` rules on a stream keyed by principal; ``absence`` rules
  (orphaned keys, rotation overdue) run on a timer against the inventory. ``kmo detect`` runs all
  of them in one process.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import Any

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Finding, event_keys, finding_uid, window_start
from streams.inventory import Inventory
from streams.policy import Policy
from streams.rules.base import Context, Hit, LateEvents, MemoryState, Rule, StateStore

log = logging.getLogger(__name__)
STREAM_SCOPES = frozenset({"event", "key"})


@dataclass(frozen=True)
class RuleError:
    rule_id: str
    event_uid: str
    error: str  # exception type and message; never the event's content


class Engine:
    """Runs a set of rules. Not thread-safe: one engine per stream task."""

    def __init__(
        self,
        rules: Iterable[ModuleType],
        *,
        policy: Policy,
        inventory: Inventory,
        state: Callable[[str, str | None], StateStore] | None = None,
        scopes: frozenset[str] | None = None,
    ) -> None:
        self.modules = [m for m in rules if scopes is None or m.RULE.scope in scopes]
        self.policy = policy
        self.inventory = inventory
        stores: dict[str, StateStore] = {}
        # (scope, bucket) -> store. In replay one dict per scope serves every bucket; in the worker a
        # bucket is the key uri (or principal) the state belongs to, so it lives on that partition.
        self._state = state or (lambda scope, bucket: stores.setdefault(scope, MemoryState()))
        self._by_op: dict[KeyOp | None, list[ModuleType]] = defaultdict(list)
        for module in self.modules:
            if module.RULE.scope == "absence":
                continue
            for op in module.RULE.ops or (None,):
                self._by_op[op].append(module)
        self.errors: list[RuleError] = []
        self.events_seen = 0
        self.late = LateEvents()  # how far out of order the window rules' events came

    def _candidates(self, op: KeyOp) -> list[ModuleType]:
        return self._by_op.get(op, []) + self._by_op.get(None, [])

    def _store_for(self, rule: Rule, event: KeyEvent) -> StateStore:
        return self._state("principal" if rule.scope == "principal" else "key", _bucket(rule, event))

    def process(self, events: Iterable[KeyEvent]) -> list[Finding]:
        """Run the rules over a batch; return the findings created or updated by it (each once)."""
        touched: dict[str, Finding] = {}
        for event in events:
            self.events_seen += 1
            self._track(event)
            # One context per scope an event's rules use (its key bucket, its principal's), not one
            # per rule: an event meets a dozen rules, and building the bucket name, the store and
            # the context for each was a fifth of the engine's time (bench/README.md).
            contexts: dict[bool, Context] = {}
            for module in self._candidates(event.op):
                rule: Rule = module.RULE
                by_principal = rule.scope == "principal"
                ctx = contexts.get(by_principal)
                if ctx is None:
                    store = self._store_for(rule, event)
                    ctx = contexts[by_principal] = Context(store, self.policy, self.inventory, self.late)
                try:
                    hit = module.match(event, ctx)
                except Exception as exc:  # isolate a broken rule; report it, never swallow it
                    self.errors.append(RuleError(rule.id, event.uid, f"{type(exc).__name__}: {exc}"))
                    log.error("rule %s failed on event %s: %s", rule.id, event.uid, type(exc).__name__)
                    continue
                if hit is not None:
                    finding = self._record(rule, hit, event, ctx.state)
                    touched[finding.uid] = finding
        return list(touched.values())

    def _track(self, event: KeyEvent) -> None:
        """What absence rules need: last use and last rotation per key, and which keys were seen.
        Per-key entries, so in the stream they live on the key's partition."""
        if event.key is None or event.key.is_alias:
            return
        uri = event.key.uri
        store = self._state("key", uri)
        stamp = event.time.timestamp()
        if store.get(f"seen|{uri}") is None:
            store[f"seen|{uri}"] = stamp
        if event.success and event.op.is_usage and stamp > (store.get(f"last-use|{uri}") or 0):
            store[f"last-use|{uri}"] = stamp
        if event.success and event.op is KeyOp.ROTATE and stamp > (store.get(f"last-rotate|{uri}") or 0):
            store[f"last-rotate|{uri}"] = stamp

    def absences(self, now: datetime) -> list[Finding]:
        """Run the absence rules (inventory against what was seen) as of ``now``."""
        out: list[Finding] = []
        store = self._state("key", None)  # None: a view over every key bucket this process holds
        for module in self.modules:
            rule: Rule = module.RULE
            if rule.scope != "absence":
                continue
            try:
                hits = module.check(now, Context(store, self.policy, self.inventory))
            except Exception as exc:
                self.errors.append(RuleError(rule.id, "-", f"{type(exc).__name__}: {exc}"))
                continue
            for hit, when in hits:
                out.append(self._record(rule, hit, None, store, when=when))
        return out

    def _record(
        self, rule: Rule, hit: Hit, event: KeyEvent | None, store: StateStore, *, when: datetime | None = None
    ) -> Finding:
        time = event.time if event is not None else when
        assert time is not None
        # A finding's state lives in its event's bucket (in the stream: that bucket's partition, on
        # whichever worker owns it). A dedup key shared by events of several buckets (a root token
        # on two keys) would split one finding across partitions, each publishing part of it under
        # one uid, the last writer winning; with the bucket in the uid each part is whole.
        dedup = hit.dedup if event is None else f"{_bucket(rule, event)}|{hit.dedup}"
        uid = finding_uid(rule.id, dedup, window_start(time, rule.dedup_seconds))
        new = Finding(
            uid=uid,
            rule_id=rule.id,
            title=rule.title,
            category=rule.category,
            severity=rule.severity,
            action=rule.action,
            analytic_type=rule.analytic,
            message=hit.message,
            keys=list(hit.keys if hit.keys is not None else (event_keys(event) if event else [])),
            actor=hit.actor if hit.actor is not None else (event.actor.principal if event else None),
            first_seen=time,
            last_seen=time,
            evidence=[event.uid] if event is not None else [],
            attack=rule.attack,
            details=dict(hit.details),
        )
        key = f"finding|{uid}"
        saved = store.get(key)
        if saved is not None:
            finding = Finding.from_ocsf(saved)
            if event is None:
                # an absence re-checked: the same condition restated, not another occurrence
                finding.last_seen, finding.message, finding.details = new.last_seen, new.message, new.details
            elif event.uid in finding.evidence:
                return finding  # the same event again (a replay): nothing new
            else:
                finding.merge(new)
        else:
            finding = new
        store[key] = finding.to_ocsf()
        return finding


def _bucket(rule: Rule, event: KeyEvent) -> str:
    """The state bucket ``rule`` keeps for ``event``: its principal, or its partition key."""
    return (event.actor.principal or "unknown") if rule.scope == "principal" else bucket_of(event)


def bucket_of(event: KeyEvent) -> str:
    """The state bucket of a key-scoped event: its Kafka partition key, as text."""
    return event.partition_key.decode()


def all_findings(store: StateStore) -> list[dict[str, Any]]:
    """Every finding kept in a memory store (replay): their latest state."""
    assert isinstance(store, dict)
    return [v for k, v in store.items() if k.startswith("finding|")]
