"""Ships the orchestrator's audit log to the actions topic, from where the sink puts it in DuckDB.

The hash-chained file stays the record of truth (operations work without a broker); shipping is
at-least-once: entries are produced, flushed and acknowledged before the shipped sequence number is
saved, so a crash re-ships a few entries, which the warehouse ignores by their hash.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from actions.audit_log import AuditLog
from actions.private_files import write_private


def ship(settings: Any) -> int:
    """Produce every audit entry not shipped yet; returns how many were produced."""
    from kmo.kafka import ensure_all_topics, produce_confirmed

    audit = AuditLog(settings.home / "actions" / "audit.jsonl")
    mark = settings.home / "state" / "audit-shipped.json"
    shipped = json.loads(mark.read_text())["seq"] if mark.exists() else 0
    entries = [e for e in audit.entries() if e["seq"] > shipped]
    if not entries:
        return 0
    topics = ensure_all_topics(settings)
    # raises if the broker did not take every entry: the mark is not moved
    produce_confirmed(
        settings,
        topics.actions.name,
        [(str(e.get("operationId") or e["seq"]).encode(), orjson.dumps(e)) for e in entries],
    )
    mark.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(mark, json.dumps({"seq": entries[-1]["seq"], "hash": entries[-1]["hash"]}).encode())
    return len(entries)
