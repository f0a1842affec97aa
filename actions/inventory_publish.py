"""Inventory snapshots: what every configured key manager holds, to Kafka and from there the warehouse.

One snapshot is one listing of one or more systems at one moment; each key becomes a message on
``kmo.inventory.v1`` (keyed by key uri) carrying the specification's ``keyInfo`` plus what analysts
need to reason about history (NIST state, versions, when the current version was made, a scheduled
destruction). The sink stores them in ``inventory_snapshots``, so "what did the estate look like on
day D" is a query. Keys carry metadata only: kmo never holds key material to leak.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from actions.backends.base import KeyInfo
from ingest.schema import format_timestamp


def key_entry(info: KeyInfo) -> dict[str, Any]:
    """A key as inventory reports it: the specification's ``keyInfo`` plus its NIST state, versions,
    when its current version was made and any scheduled destruction (the response's ``keys`` list)."""
    entry: dict[str, Any] = info.to_schema() | {"state": str(info.state), "versions": info.versions}
    if info.key_type:
        entry["keyType"] = info.key_type
    if info.current_since:
        entry["currentSince"] = format_timestamp(info.current_since)
    if info.destroy_at:
        entry["destroyAt"] = format_timestamp(info.destroy_at)
    return entry


_EXTRA = ("state", "versions", "currentSince", "destroyAt")


def snapshot(listings: dict[str, list[dict[str, Any]]], *, now: datetime | None = None) -> list[dict[str, Any]]:
    """One snapshot document per key, across the systems listed (``system -> key entries``)."""
    snapshot_id = str(uuid.uuid4())
    taken = format_timestamp(now or datetime.now(UTC))
    docs = []
    for system, entries in listings.items():
        for entry in entries:
            doc: dict[str, Any] = {
                "uid": hashlib.sha256(f"{snapshot_id}|{entry['keyId']}".encode()).hexdigest(),
                "snapshotId": snapshot_id,
                "takenAt": taken,
                "system": system,
                "keyInfo": {k: v for k, v in entry.items() if k not in _EXTRA},
            }
            doc.update({k: entry[k] for k in _EXTRA if k in entry})
            docs.append(doc)
    return docs


def publish(settings: Any, docs: list[dict[str, Any]]) -> int:
    """Produce the snapshot and wait for the broker to take every message; raises if it did not."""
    from kmo.kafka import ensure_all_topics, produce_confirmed

    topic = ensure_all_topics(settings).inventory.name
    return produce_confirmed(settings, topic, [(d["keyInfo"]["keyId"].encode(), orjson.dumps(d)) for d in docs])
