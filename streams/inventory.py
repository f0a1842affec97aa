"""The key inventory detections consult: a JSON array in the specification's ``keyInfo`` shape plus
``keyManagementSystem``, ``owner`` and ``lastRotatedAt``. ``keyId`` is the provider's own name for
the key and is canonicalised (:mod:`ingest.schema.keyref`) so it matches the events of that key."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ingest.schema import KeyRef, KeyRefError, parse_timestamp


class InventoryError(ValueError):
    """The inventory file is wrong; names the record and field."""


@dataclass(frozen=True)
class InventoryKey:
    uri: str
    key_id: str
    key_type: str | None
    algorithm: str | None
    key_size: int | None
    created_at: datetime | None
    last_rotated_at: datetime | None
    status: str | None
    owner: str | None
    system: str


class Inventory:
    def __init__(self, keys: list[InventoryKey] | None = None) -> None:
        self.keys = {k.uri: k for k in keys or []}

    def __contains__(self, uri: str) -> bool:
        return uri in self.keys

    def get(self, uri: str) -> InventoryKey | None:
        return self.keys.get(uri)

    def __len__(self) -> int:
        return len(self.keys)


def _time(value: Any, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise InventoryError(f"{where}: {exc}") from None


def parse_inventory(doc: Any) -> Inventory:
    if not isinstance(doc, list):
        raise InventoryError("an inventory is a JSON array of key records")
    keys = []
    for i, rec in enumerate(doc):
        where = f"inventory record {i}"
        if not isinstance(rec, dict) or not isinstance(rec.get("keyId"), str):
            raise InventoryError(f"{where}: keyId (string) is required")
        system = rec.get("keyManagementSystem")
        if not isinstance(system, str):
            raise InventoryError(f"{where}: keyManagementSystem is required")
        try:
            ref = KeyRef.from_native(system, rec["keyId"], **{k: v for k, v in rec.items() if k in ("token",)})
        except (KeyRefError, ValueError) as exc:
            raise InventoryError(f"{where}: {exc}") from None
        size = rec.get("keySize")
        keys.append(
            InventoryKey(
                uri=ref.uri,
                key_id=rec["keyId"],
                key_type=rec.get("keyType"),
                algorithm=rec.get("algorithm"),
                key_size=size if isinstance(size, int) else None,
                created_at=_time(rec.get("createdAt"), f"{where}.createdAt"),
                last_rotated_at=_time(rec.get("lastRotatedAt"), f"{where}.lastRotatedAt"),
                status=rec.get("status"),
                owner=rec.get("owner") or None,
                system=system,
            )
        )
    return Inventory(keys)


def load_inventory(path: str | Path | None) -> Inventory:
    if path is None:
        return Inventory()
    try:
        return parse_inventory(json.loads(Path(path).read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        raise InventoryError(f"cannot read inventory {path}: {exc}") from None
