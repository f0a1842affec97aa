"""Collector heartbeats: proof of life that tells a silent source from an idle one.

"No events for key K" means nothing unless the source that would log K's use was read, recently,
and is not lagging. After every pass (and so every ``--watch`` interval) a collector publishes
what it read, when the newest event it saw happened, and whether any input was unreadable, to the
coverage topic; the sink keeps them in the ``coverage`` table and the ``source_health`` view.
"""

from __future__ import annotations

import hashlib
import os
import socket
from datetime import UTC, datetime
from typing import Any

import orjson

from ingest.runner import RunSummary

SCHEMA = "kmo.heartbeat.v1"


def heartbeat(summary: RunSummary, locations: list[str], *, now: datetime | None = None) -> dict[str, Any]:
    """The heartbeat document for one collector pass."""
    now = now or datetime.now(UTC)
    lag = (now - summary.last_event_time).total_seconds() if summary.last_event_time else None
    if summary.unreadable:
        status = "degraded" if summary.records else "failing"
    else:
        status = "ok" if summary.records or summary.inputs_already_done else "idle"
    collector = f"{socket.gethostname()}:{os.getpid()}"
    doc = {
        "schema": SCHEMA,
        "time": now.isoformat(),
        "source": summary.source,
        "collector": collector,
        "locations": locations,
        "status": status,
        "inputs": summary.inputs,
        "records": summary.records,
        "events": summary.events,
        "skipped": summary.skipped,
        "dead_lettered": summary.dead_lettered,
        "last_event_time": summary.last_event_time.isoformat() if summary.last_event_time else None,
        "lag_seconds": lag,
        "unreadable": [{"input": n, "reason": r} for n, r in summary.unreadable],
    }
    doc["uid"] = hashlib.sha256(orjson.dumps([collector, doc["time"], summary.source])).hexdigest()[:32]
    return doc


def encode_heartbeat(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc)
