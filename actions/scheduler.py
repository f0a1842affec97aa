"""Rotation policies, stored, and ``kmo scheduler``, which enforces them.

A request's ``rotationPolicy`` {maxAge, autoRotate, notifyBefore} is stored per key when the key is
generated. Each scheduler tick asks the key's manager how old the primary version is (kmo's own
record of the last rotation where the manager cannot say, as with PKCS#11) and then:

* ``autoRotate`` and due: rotates, audited as ``kmo-scheduler``;
* due without ``autoRotate``: reports it overdue, once per version;
* within ``notifyBefore`` of due: notifies, once per version.

Providers that rotate on their own schedule (Vault ``auto_rotate_period``, AWS KMS) reset the age
themselves, so the scheduler does not rotate them a second time.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from actions.audit_log import AuditIndex, AuditLog
from actions.backends.base import BackendError, KeyBackend, KeyInfo
from actions.private_files import write_private
from actions.request import RotationPolicy
from actions.resilience import rotate_once
from ingest.schema import format_timestamp, parse_timestamp


class PolicyStore:
    """``$KMO_HOME/actions/rotation_policies.json``: key uri -> where it lives and its policy."""

    def __init__(self, home: Path) -> None:
        self.path = home / "actions" / "rotation_policies.json"
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

    def all(self) -> dict[str, dict[str, Any]]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def save(self, info: KeyInfo, name: str, policy: RotationPolicy, *, keystore: str | None = None) -> None:
        docs = self.all()
        docs[info.ref.uri] = {
            "system": str(info.ref.provider),
            "name": name,
            "keystore": keystore,
            "maxAgeSeconds": int(policy.max_age.total_seconds()) if policy.max_age else None,
            "autoRotate": policy.auto_rotate,
            "notifyBeforeSeconds": int(policy.notify_before.total_seconds()) if policy.notify_before else None,
            "since": format_timestamp(info.current_since or datetime.now(UTC)),
        }
        write_private(self.path, json.dumps(docs, indent=2, sort_keys=True).encode())

    def touch(self, uri: str, when: datetime) -> None:
        docs = self.all()
        if uri in docs:
            docs[uri]["since"] = format_timestamp(when)
            write_private(self.path, json.dumps(docs, indent=2, sort_keys=True).encode())


@dataclass(frozen=True)
class Decision:
    uri: str
    kind: str  # rotate | overdue | due-soon
    due: datetime
    version: int | None


def decide(uri: str, doc: dict[str, Any], info: KeyInfo, now: datetime) -> Decision | None:
    """What the policy asks for this key now (pure: the rule the tests pin down)."""
    if not doc.get("maxAgeSeconds") or info.status != "active":
        return None
    since = info.current_since or parse_timestamp(doc["since"])
    due = since + timedelta(seconds=doc["maxAgeSeconds"])
    if now >= due:
        return Decision(uri, "rotate" if doc.get("autoRotate") else "overdue", due, info.version)
    notify = doc.get("notifyBeforeSeconds")
    if notify and now >= due - timedelta(seconds=notify):
        return Decision(uri, "due-soon", due, info.version)
    return None


class Scheduler:
    def __init__(
        self, store: PolicyStore, backends: Callable[[dict[str, Any]], KeyBackend | None], audit: AuditLog
    ) -> None:
        self.store = store
        self.backends = backends
        self.audit = audit
        self._notified = AuditIndex(
            audit,
            lambda e: (
                (e.get("keyId"), e.get("notice"), e.get("version")) if e.get("operation") == "rotation-notice" else None
            ),
        )

    def tick(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """One pass over every stored policy; returns the audit entries it wrote."""
        now = now or datetime.now(UTC)
        written: list[dict[str, Any]] = []
        for uri, doc in sorted(self.store.all().items()):
            base = {"operationId": str(uuid.uuid4()), "actor": "kmo-scheduler", "system": doc["system"], "keyId": uri}
            backend = self.backends(doc)
            if backend is None:
                written.append(
                    self.audit.append(
                        {
                            **base,
                            "operation": "rotation-check",
                            "outcome": "skipped",
                            "reason": f"{doc['system']} is not configured here",
                        }
                    )
                )
                continue
            try:
                decision = decide(uri, doc, backend.describe(doc["name"]), now)
                if decision is None:
                    continue
                if decision.kind != "rotate":
                    if (uri, decision.kind, decision.version) not in self._notified:
                        written.append(
                            self.audit.append(
                                {
                                    **base,
                                    "operation": "rotation-notice",
                                    "notice": decision.kind,
                                    "version": decision.version,
                                    "due": format_timestamp(decision.due),
                                    "outcome": "notified",
                                }
                            )
                        )
                    continue
                written.append(
                    self.audit.append(
                        {**base, "operation": "rotate", "outcome": "requested", "due": format_timestamp(decision.due)}
                    )
                )
                info = rotate_once(backend, doc["name"])[0]
                self.store.touch(uri, now)
                written.append(
                    self.audit.append({**base, "operation": "rotate", "outcome": "succeeded", "version": info.version})
                )
            except BackendError as exc:
                written.append(
                    self.audit.append(
                        {**base, "operation": "rotate", "outcome": "failed", "error": f"{type(exc).__name__}: {exc}"}
                    )
                )
        return written
