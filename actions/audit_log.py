"""The orchestrator's own audit trail: every operation, request and result, hash-chained.

Each entry carries the SHA-256 of its predecessor and its own hash over a canonical form of
everything else, so an edited, removed, inserted or reordered entry breaks the chain from that
point on (``kmo verify-audit``). Entries hold identifiers and outcomes, never key material or
secrets. The file is 0600 and appended with fsync.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest.schema import format_timestamp

GENESIS = "0" * 64


def _canonical(entry: dict[str, Any]) -> bytes:
    return json.dumps({k: v for k, v in entry.items() if k != "hash"}, sort_keys=True, separators=(",", ":")).encode()


def _last_line(path: Path, chunk: int = 65536) -> bytes:
    """The file's last complete line, however long: read backwards a chunk at a time until the
    newline before it, so an entry larger than one chunk is never parsed from its middle."""
    with path.open("rb") as fh:
        end = fh.seek(0, os.SEEK_END)
        tail = b""
        pos = end
        while pos > 0:
            pos = max(0, pos - chunk)
            fh.seek(pos)
            tail = fh.read(end - pos)
            if b"\n" in tail.rstrip(b"\n"):
                break
        return tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]


@dataclass(frozen=True)
class ChainProblem:
    line: int
    reason: str


class AuditLog:
    """Append-only, hash-chained JSON lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _tail(self) -> tuple[int, str]:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return 0, GENESIS
        entry = json.loads(_last_line(self.path))
        return entry["seq"], entry["hash"]

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append under an exclusive lock: the CLI, the scheduler and the responder may write at once,
        and two writers reading the same tail would fork the chain."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # released when the file closes
            seq, prev = self._tail()
            entry = {"seq": seq + 1, "time": format_timestamp(datetime.now(UTC)), "prev": prev, **record}
            entry["hash"] = hashlib.sha256(_canonical(entry)).hexdigest()
            fh.write(json.dumps(entry, sort_keys=True).encode() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        return entry

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def read_from(self, offset: int) -> tuple[list[dict[str, Any]], int]:
        """Entries that start at or after byte ``offset``, and the offset after the last complete one."""
        if not self.path.exists():
            return [], offset
        with self.path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
        complete = data[: data.rfind(b"\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line.strip()], offset + len(complete)

    def verify(self) -> list[ChainProblem]:
        """Every break in the chain: an empty list means intact."""
        problems = []
        prev, expected_seq = GENESIS, 1
        for n, line in enumerate(self.path.read_text().splitlines() if self.path.exists() else [], start=1):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                problems.append(ChainProblem(n, "not JSON"))
                continue
            if entry.get("seq") != expected_seq:
                problems.append(ChainProblem(n, f"sequence {entry.get('seq')} where {expected_seq} was expected"))
            if entry.get("prev") != prev:
                problems.append(ChainProblem(n, "does not follow the previous entry (removed, inserted or reordered)"))
            if hashlib.sha256(_canonical(entry)).hexdigest() != entry.get("hash"):
                problems.append(ChainProblem(n, "content does not match its hash (edited)"))
            prev, expected_seq = entry.get("hash", ""), (entry.get("seq") or expected_seq) + 1
        return problems


class AuditIndex:
    """A set of keys derived from audit entries, kept current by reading only what was appended since.

    The responder and the scheduler ask "was this already done?" on every finding or tick; rereading
    a year of audit log each time would make that question slower every day.
    """

    def __init__(self, log: AuditLog, key: Callable[[dict[str, Any]], Hashable | None]) -> None:
        self.log = log
        self.key = key
        self._offset = 0
        self._keys: set[Hashable] = set()

    def __contains__(self, item: Hashable) -> bool:
        entries, self._offset = self.log.read_from(self._offset)
        self._keys.update(k for k in map(self.key, entries) if k is not None)
        return item in self._keys
