"""The responder: findings in, rotations and disables out (or proposals), only where the policy says so.

``plan`` is pure: a finding (OCSF, as the worker publishes it) and the policy give the actions to
take, one per key the finding names. ``Responder.handle`` carries them out through the same backends
as people do, writes each to the audit log with the finding that triggered it, and skips any action
the audit log shows already done for that finding and key, so a redelivered finding (after a crash
before the offset commit) is not acted on twice. Destruction is never planned: the policy parser
refuses it, and this module has no path to it.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka.errors import KafkaError

from actions.audit_log import AuditIndex, AuditLog
from actions.backends.base import BackendError, KeyBackend
from actions.key_names import key_name
from actions.private_files import write_private
from actions.resilience import retrying, rotate_once
from ingest.schema import Provider
from kmo.pause import Pause
from streams.policy import Policy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Planned:
    action: str  # rotate | disable
    key_uri: str
    finding_uid: str
    rule_id: str


def plan(finding: dict[str, Any], policy: Policy) -> list[Planned]:
    info = finding.get("finding_info") or {}
    rule_id = (info.get("analytic") or {}).get("uid")
    action = policy.auto_response.get(rule_id or "")
    if action is None:
        return []
    keys = [r.get("uid") for r in finding.get("resources") or [] if r.get("type") == "crypto_key" and r.get("uid")]
    return [Planned(action, k, info.get("uid", ""), rule_id or "") for k in keys]


class Responder:
    """Carries out planned actions; ``backends`` maps a provider to its adapter (absent: not managed).

    The policy's ``response_mode`` decides what "carry out" means: ``observe`` records what would be
    done, ``propose`` writes a pending action for a human (``$KMO_HOME/actions/pending``), ``enforce``
    acts. Enforcement over ``response_max_actions_per_hour`` degrades to a proposal, and after
    ``response_max_consecutive_failures`` failures in a row the responder stops acting (the circuit
    opens) and only observes until it is restarted.
    """

    def __init__(
        self,
        policy: Policy,
        backends: Callable[[Provider], KeyBackend | None],
        audit: AuditLog,
        pending_dir: Path | None = None,
    ) -> None:
        self.policy = policy
        self.backends = backends
        self.audit = audit
        self.pending_dir = pending_dir or audit.path.parent / "pending"
        self.failures = 0
        self.circuit_open = False
        self._acted: deque[float] = deque()
        self._handled_index = AuditIndex(audit, self._handled)

    @staticmethod
    def _handled(entry: dict[str, Any]) -> tuple[str, str, str] | None:
        if entry.get("outcome") in ("succeeded", "observed", "proposed") and entry.get("trigger"):
            return entry["trigger"], entry.get("keyId", ""), entry.get("operation", "")
        return None

    def _over_limit(self, now: float) -> bool:
        while self._acted and now - self._acted[0] > 3600:
            self._acted.popleft()
        return len(self._acted) >= self.policy.response_max_actions_per_hour

    def _propose(self, base: dict[str, Any], name: str, why: str) -> dict[str, Any]:
        self.pending_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        command = f"kmo {base['operation']} --system {base['system']} --key-id {name}"
        pending = {**base, "command": command, "why": why}
        write_private(self.pending_dir / f"{base['operationId']}.json", json.dumps(pending, indent=2).encode())
        return self.audit.append({**base, "outcome": "proposed", "why": why, "command": command})

    def handle(self, finding: dict[str, Any], *, now: float | None = None) -> list[dict[str, Any]]:
        """Act on one finding; returns the audit entries written. Backend errors are recorded, not raised."""
        now = time.monotonic() if now is None else now
        written = []
        for step in plan(finding, self.policy):
            if (step.finding_uid, step.key_uri, step.action) in self._handled_index:
                continue  # a redelivered or re-published finding: already handled
            base = {
                "operationId": str(uuid.uuid4()),
                "operation": step.action,
                "actor": f"kmo-responder:{step.rule_id}",
                "trigger": step.finding_uid,
                "keyId": step.key_uri,
            }
            try:
                provider, name = key_name(step.key_uri)
            except ValueError as exc:
                written.append(self.audit.append({**base, "outcome": "skipped", "reason": str(exc)}))
                continue
            base["system"] = str(provider)
            mode = "observe" if self.circuit_open else self.policy.response_mode
            if mode == "observe":
                why = "circuit open after repeated failures" if self.circuit_open else "response_mode observe"
                written.append(self.audit.append({**base, "outcome": "observed", "why": why}))
                continue
            if mode == "propose" or self._over_limit(now):  # a proposal is for a human: no backend needed
                why = "response_mode propose" if mode == "propose" else "hourly action limit reached"
                written.append(self._propose(base, name, why))
                continue
            backend = self.backends(provider)
            if backend is None:
                written.append(self.audit.append({**base, "outcome": "skipped", "reason": "system not managed here"}))
                continue
            written.append(self.audit.append({**base, "outcome": "requested"}))
            self._acted.append(now)
            try:
                # rotation exactly once despite timeouts; disabling is idempotent, so simply retried
                if step.action == "rotate":
                    info = rotate_once(backend, name)[0]
                else:
                    info = retrying(functools.partial(backend.disable, name))
            except BackendError as exc:
                log.warning("responder %s %s failed: %s", step.action, step.key_uri, exc)
                written.append(
                    self.audit.append({**base, "outcome": "failed", "error": f"{type(exc).__name__}: {exc}"})
                )
                self.failures += 1
                if self.failures >= self.policy.response_max_consecutive_failures:
                    self.circuit_open = True
                    written.append(self.audit.append({**base, "outcome": "circuit-open", "failures": self.failures}))
                continue
            self.failures = 0
            written.append(self.audit.append({**base, "outcome": "succeeded", "version": info.version}))
        return written


def run(settings: Any, responder: Responder, *, idle_seconds: float | None = None) -> int:
    """Consume the findings topic as group ``kmo-responder``; commit each batch after acting on it.

    A crash between an action and the commit redelivers the finding, and ``handle`` skips what the
    audit log shows done. Returns the number of findings read (``idle_seconds`` stops after a quiet
    spell; None runs until interrupted).
    """
    import orjson

    from ingest.deadletter import DeadLetter, DeadLetterWriter
    from kmo.kafka import make_consumer, make_producer, resolve_bootstrap
    from kmo.topics import Topics

    topics = Topics.for_settings(settings)
    bootstrap = resolve_bootstrap(settings)
    producer = make_producer(bootstrap)
    dead_letters = DeadLetterWriter(producer, topics.dlq.name, settings.home / "quarantine")
    consumer = make_consumer(bootstrap, "kmo-responder")
    consumer.subscribe([topics.findings.name])
    seen, quiet_since = 0, time.monotonic()
    kafka_pause: Pause | None = None
    try:
        while idle_seconds is None or time.monotonic() - quiet_since < idle_seconds:
            try:
                batch = consumer.poll(timeout_ms=500)
            except KafkaError as exc:  # the broker away: wait for it rather than die
                kafka_pause = kafka_pause or Pause(log, 2.0)
                kafka_pause.wait(logging.WARNING, f"Kafka is unreachable ({exc}); retrying")
                continue
            kafka_pause = None
            if not batch:
                continue
            quiet_since = time.monotonic()
            for records in batch.values():
                for record in records:
                    seen += 1
                    try:
                        finding = orjson.loads(record.value)
                        if not isinstance(finding, dict):
                            raise ValueError("a finding is a JSON object")
                    except (orjson.JSONDecodeError, ValueError) as exc:
                        origin = f"{record.topic}/{record.partition}/{record.offset}"
                        dead_letters.send(DeadLetter(record.value or b"", "respond", record.topic, origin, str(exc)))
                        continue
                    responder.handle(finding)
            producer.flush()  # dead letters are safely written before the offsets move past them
            try:
                consumer.commit()  # only now: every action for this batch is in the audit log
            except KafkaError as exc:  # redelivered later; the audit log keeps it from being acted on twice
                log.warning("offset commit failed (findings may be re-read, not re-acted on): %s", exc)
    finally:
        consumer.close()
        producer.close()
    return seen
