"""Crypto-shredding: a data set is made unreadable by destroying the data keys that protect it.

The keys are the ones labelled with the data set (``kmo generate --data-set NAME``). Shredding is
not a shortcut around the destruction pipeline: it opens one ordinary destruction proposal per key
(each with its usage and backup checks, each approved by two custodians, each certified), and
tracks them together, so "is data set X gone?" has one answer: every key's certificate.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from actions.backends.base import KeyBackend
from actions.destruction import DestructionPipeline, DestructionRefused
from actions.execute import DATA_SET, DATA_SET_LABEL
from actions.key_names import name_in_backend
from actions.private_files import write_private
from ingest.schema import format_timestamp


def keys_of(backend: KeyBackend, data_set: str) -> list[Any]:
    """Every key in ``backend`` labelled with ``data_set`` and not yet destroyed."""
    return [
        info
        for info in backend.list_keys()
        if info.labels.get(DATA_SET_LABEL) == data_set and info.status != "destroyed"
    ]


def propose(
    pipeline: DestructionPipeline,
    backend: KeyBackend,
    data_set: str,
    *,
    proposer: str,
    reason: str,
    pending: timedelta = timedelta(days=7),
    override_recent_use: str | None = None,
    backups_covered: str | None = None,
    keystore: str | None = None,
) -> dict[str, Any]:
    """One destruction proposal per key of the data set; all or none (a refusal for one key
    cancels the proposals already opened, so a data set is never half-proposed)."""
    if not DATA_SET.match(data_set):
        raise DestructionRefused("data set: 1-63 lowercase letters, digits, '-' or '_'")
    keys = keys_of(backend, data_set)
    if not keys:
        raise DestructionRefused(f"no live key in {backend.system} is labelled {DATA_SET_LABEL}={data_set}")
    opened: list[dict[str, Any]] = []
    try:
        for info in keys:
            doc = pipeline.propose(
                backend,
                name_in_backend(info.ref.uri),
                proposer=proposer,
                reason=f"crypto-shred of data set {data_set}: {reason}",
                pending=pending,
                override_recent_use=override_recent_use,
                backups_covered=backups_covered,
                keystore=keystore,
            )
            opened.append({"proposal": doc["id"], "keyId": doc["keyId"]})
    except DestructionRefused:
        for done in opened:
            pipeline.cancel(done["proposal"], None, proposer, f"crypto-shred of {data_set} refused for another key")
        raise
    shred = {
        "id": str(uuid.uuid4()),
        "dataSet": data_set,
        "system": str(backend.system),
        "proposer": proposer,
        "reason": reason,
        "proposedAt": format_timestamp(datetime.now(UTC)),
        "keys": opened,
    }
    directory = pipeline.home / "actions" / "shreds"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(directory / f"{shred['id']}.json", json.dumps(shred, indent=2).encode())
    pipeline.audit.append(
        {
            "operation": "crypto-shred",
            "outcome": "proposed",
            "actor": proposer,
            "shred": shred["id"],
            "dataSet": data_set,
            "system": shred["system"],
            "proposals": [k["proposal"] for k in opened],
        }
    )
    return shred


def status(pipeline: DestructionPipeline, shred_id: str) -> dict[str, Any]:
    """Each key's proposal status; the data set is shredded when every key has its certificate."""
    if not shred_id.replace("-", "").isalnum():
        raise DestructionRefused(f"no crypto-shred {shred_id!r}")
    path = pipeline.home / "actions" / "shreds" / f"{shred_id}.json"
    if not path.exists():
        raise DestructionRefused(f"no crypto-shred {shred_id!r}")
    shred = json.loads(path.read_text())
    keys = []
    for entry in shred["keys"]:
        doc = pipeline.load(entry["proposal"])
        keys.append(
            entry | {"status": doc["status"], "certificate": (doc.get("certificate") or {}).get("verificationHash")}
        )
    shredded = all(k["status"] == "destroyed" for k in keys)
    return shred | {"keys": keys, "status": "shredded" if shredded else "in progress"}
