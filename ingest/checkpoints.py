"""Per-input progress, so a re-run produces nothing new and a crash resumes where it stopped.

Progress is saved only after the producer has flushed and every send succeeded, so a checkpoint
never covers a record that is not in Kafka. A crash between flush and save re-produces at most one
batch; those records carry the same deterministic uids and the warehouse ignores the copies.
SQLite (WAL) because it is atomic, in the standard library, and survives kill -9.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Progress:
    next_index: int  # the first frame not yet durably produced
    done: bool


class CheckpointStore:
    """Checkpoints of every collector, keyed by (source, input identity)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS input_progress ("
            " source TEXT NOT NULL, input_id TEXT NOT NULL, next_index INTEGER NOT NULL,"
            " done INTEGER NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (source, input_id))"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL)"
        )

    def get(self, source: str, input_id: str) -> Progress:
        row = self._db.execute(
            "SELECT next_index, done FROM input_progress WHERE source = ? AND input_id = ?",
            (source, input_id),
        ).fetchone()
        return Progress(row[0], bool(row[1])) if row else Progress(0, False)

    def load(self, source: str) -> dict[str, Progress]:
        """Every input's progress for ``source`` in one query (a run may cover thousands of files)."""
        rows = self._db.execute(
            "SELECT input_id, next_index, done FROM input_progress WHERE source = ?", (source,)
        ).fetchall()
        return {input_id: Progress(next_index, bool(done)) for input_id, next_index, done in rows}

    def save(self, source: str, input_id: str, next_index: int, *, done: bool = False) -> None:
        self.save_many([(source, input_id, next_index, done)])

    def save_many(self, rows: Iterable[tuple[str, str, int, bool]]) -> None:
        """Save several inputs' progress in one transaction (one fsync)."""
        now = datetime.now(UTC).isoformat()
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO input_progress VALUES (?, ?, ?, ?, ?) ON CONFLICT (source, input_id)"
                " DO UPDATE SET"
                " next_index = excluded.next_index, done = excluded.done, updated_at = excluded.updated_at",
                [(source, input_id, next_index, int(done), now) for source, input_id, next_index, done in rows],
            )

    def get_cursor(self, name: str) -> str | None:
        """A live source's position (e.g. GCP: last timestamp and the insertIds seen at it)."""
        row = self._db.execute("SELECT value FROM cursors WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def save_cursor(self, name: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO cursors VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
            " value = excluded.value, updated_at = excluded.updated_at",
            (name, value, datetime.now(UTC).isoformat()),
        )

    def close(self) -> None:
        self._db.close()
