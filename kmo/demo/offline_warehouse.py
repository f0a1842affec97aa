"""A warehouse filled from the demo estate without a broker: for the saved-query and report tests
(CI runs every saved query and report against it) and for trying queries without starting Kafka.

It holds everything the streaming path would have written: the events of every source, the findings
``kmo detect`` raises over them, an inventory snapshot, kmo's own actions (a generate and two
rotations through the local keystore, audited as usual) and a heartbeat per source.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from actions.audit_log import AuditLog
from actions.inventory_publish import snapshot
from analytics.warehouse import events_to_arrow, insert_batch, open_warehouse
from ingest.offline import read_events
from ingest.schema import format_timestamp, parse_timestamp
from kmo.demo.cloudtrail_files import render_files, write_files
from kmo.demo.estate import Estate
from kmo.demo.other_sources import generate_all
from streams.inventory import load_inventory
from streams.policy import load_policy
from streams.replay import replay


def build(warehouse: Path, workdir: Path, *, seed: int = 7, days: int = 2) -> dict[str, Any]:
    """Write the estate's files under ``workdir`` and load them into ``warehouse``; returns counts."""
    estate = Estate(seed=seed, days=days)
    write_files(workdir / "cloudtrail", render_files(estate.generate()))
    sources = [("aws.cloudtrail", "cloudtrail")]
    for other in generate_all(estate):
        write_files(workdir / other.directory, other.files)
        sources.append((other.source, other.directory))
    inventory = estate.inventory()
    (workdir / "inventory.json").write_text(json.dumps(inventory))
    (workdir / "incidents.json").write_text(json.dumps([i.as_dict() for i in estate.incidents]))

    events = [e for source, directory in sources for e in read_events(source, [str(workdir / directory)])]
    result = replay(events, policy=load_policy(), inventory=load_inventory(workdir / "inventory.json"))
    newest = max(e.time for e in events)

    entries = [
        {**k, "state": "active", "currentSince": k["lastRotatedAt"], "system": k["keyManagementSystem"]}
        for k in inventory
    ]
    listings: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        system = entry.pop("system")
        for extra in ("keyManagementSystem", "owner", "lastRotatedAt", "alias"):
            entry.pop(extra, None)
        listings.setdefault(system, []).append(entry)
    snapshots = snapshot(listings, now=newest)

    audit = AuditLog(workdir / "audit.jsonl")
    for step, (operation, outcome, version) in enumerate(
        [("generate", "succeeded", 1), ("rotate", "succeeded", 2), ("rotate", "failed", None)]
    ):
        audit.append(
            {
                "operationId": f"fixture-{step}",
                "operation": operation,
                "outcome": outcome,
                "actor": "ops",
                "system": "vault",
                "keyId": "vault:transit/keys/payments",
                "version": version,
            }
        )
    actions = list(audit.entries())
    for entry in actions:  # as if they happened during the estate's window
        entry["time"] = format_timestamp(newest - timedelta(hours=3 - entry["seq"]))

    heartbeats = [
        {
            "uid": f"fixture-{source}",
            "time": format_timestamp(newest),
            "source": source,
            "collector": "fixture",
            "status": "ok",
            "records": sum(1 for e in events if e.source == source),
            "last_event_time": format_timestamp(max(e.time for e in events if e.source == source)),
            "lag_seconds": 0.0,
        }
        for source, _directory in sources
    ]

    con = open_warehouse(warehouse)
    try:
        con.execute("BEGIN TRANSACTION")
        insert_batch(
            con,
            events_to_arrow(events),
            heartbeats=heartbeats,
            actions=actions,
            inventory=snapshots,
            findings=[f.to_ocsf() for f in result.findings],
        )
        con.execute("COMMIT")
    finally:
        con.close()
    return {
        "events": len(events),
        "findings": len(result.findings),
        "keys": len(snapshots),
        "actions": len(actions),
        "newest": parse_timestamp(format_timestamp(newest)),
    }
