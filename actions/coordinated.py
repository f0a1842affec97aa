"""Coordinated rotation: one logical key held in several systems rotates everywhere or nowhere.

Participants are rotated in order; when one fails, the ones already rotated are rolled back to their
previous primary version, newest first. A participant that cannot roll back (Vault transit, AWS KMS,
PKCS#11 here) can only be safe as the last one, so it is moved there, and a set with two such
participants is refused before anything is touched. Every step is in the audit log under one
operation id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from actions.audit_log import AuditLog
from actions.backends.base import BackendError, Capability, KeyBackend
from actions.resilience import rotate_once


class CoordinationRefused(Exception):
    """The participants cannot be rotated all-or-nothing."""


@dataclass(frozen=True)
class Participant:
    backend: KeyBackend
    name: str

    @property
    def can_roll_back(self) -> bool:
        return Capability.ROLLBACK in self.backend.capabilities


def order(participants: list[Participant]) -> list[Participant]:
    """Roll-back-able participants first, the (single) one that cannot go last."""
    fixed = [p for p in participants if not p.can_roll_back]
    if len(fixed) > 1:
        names = ", ".join(f"{p.backend.system}:{p.name}" for p in fixed)
        raise CoordinationRefused(f"more than one participant cannot roll back ({names}); rotate them separately")
    return [p for p in participants if p.can_roll_back] + fixed


def rotate_together(participants: list[Participant], audit: AuditLog, actor: str) -> dict[str, Any]:
    """Rotate all or none. Returns a summary; raises the failing participant's BackendError after rolling back."""
    operation_id = str(uuid.uuid4())
    plan = order(participants)
    before = [p.backend.describe(p.name).version for p in plan]  # every key exists before we start
    audit.append(
        {
            "operationId": operation_id,
            "operation": "coordinated-rotate",
            "actor": actor,
            "outcome": "requested",
            "keys": [f"{p.backend.system}:{p.name}" for p in plan],
        }
    )
    done: list[tuple[Participant, int | None]] = []
    for p, previous_version in zip(plan, before, strict=True):
        try:
            info = rotate_once(p.backend, p.name)[0]  # throttling is retried, never a second rotation
        except BackendError as exc:
            audit.append(
                {
                    "operationId": operation_id,
                    "operation": "coordinated-rotate",
                    "actor": actor,
                    "outcome": "failed",
                    "keyId": f"{p.backend.system}:{p.name}",
                    "error": str(exc),
                }
            )
            for q, previous in reversed(done):
                entry = {
                    "operationId": operation_id,
                    "operation": "rollback",
                    "actor": actor,
                    "keyId": f"{q.backend.system}:{q.name}",
                    "version": previous,
                }
                try:
                    q.backend.rollback(q.name, previous)  # type: ignore[arg-type]
                except BackendError as undo:  # keep undoing the rest; a human must finish this one
                    audit.append({**entry, "outcome": "failed", "error": str(undo)})
                    continue
                audit.append({**entry, "outcome": "succeeded"})
            raise
        done.append((p, previous_version))
        audit.append(
            {
                "operationId": operation_id,
                "operation": "coordinated-rotate",
                "actor": actor,
                "outcome": "rotated",
                "keyId": info.ref.uri,
                "version": info.version,
            }
        )
    audit.append(
        {"operationId": operation_id, "operation": "coordinated-rotate", "actor": actor, "outcome": "succeeded"}
    )
    return {"operationId": operation_id, "rotated": [f"{p.backend.system}:{p.name}" for p, _ in done]}
