"""When DuckDB folds its write-ahead log into the warehouse file: often while the sink keeps up, rarely
while it works through a backlog.

DuckDB checkpoints when its WAL passes ``checkpoint_threshold`` (16 MiB by default), inside the
commit that crosses it. Flat out, with batches of ~11,000 events (~25 MB of WAL each), every commit
checkpointed: the sink spent more time committing than on anything else (bench/README.md), and the
file grew by 1,395 bytes an event. Inserting 300,000 of the benchmark's events in batches of 11,000,
commit time per event: 16 MiB 40.7 µs, 64 MB 27.7 µs, 256 MB 15.9 µs (and 755 bytes an event on
disk). But a larger threshold makes each fold longer, and at a steady trickle a fold holds up every
record that arrives while it runs: there, the default's short, frequent folds keep the queryable
latency low.

So the threshold follows the sink's state: while it is behind (the sink decides: a large batch, or
records waiting past it) it is ``KMO_WAREHOUSE_BACKLOG_CHECKPOINT_MB`` (256 MiB; 0 keeps DuckDB's
default always); once caught up the default is set back, and the next commit folds what the backlog
left in the WAL (6.3 s after a million events flat out). What the WAL holds is as durable as the
file (DuckDB replays it at start); a restart during a backlog replays at most that much.
"""

from __future__ import annotations

import logging
import os

import duckdb

from kmo.settings import env_int

log = logging.getLogger(__name__)

DEFAULT_MB = 16  # DuckDB's own default, 16 MiB


class CheckpointMode:
    """Sets ``checkpoint_threshold`` on the sink's connection when the sink's state changes."""

    def __init__(self, con: duckdb.DuckDBPyConnection, backlog_mb: int | None = None) -> None:
        self.con = con
        self.backlog_mb = (
            env_int(os.environ, "KMO_WAREHOUSE_BACKLOG_CHECKPOINT_MB", 256, 0, 64 * 1024)
            if backlog_mb is None
            else backlog_mb
        )
        self.current_mb = DEFAULT_MB

    def after_batch(self, *, behind: bool) -> int:
        """Call between batches (outside a transaction); returns the threshold now in force, in MB."""
        wanted = self.backlog_mb if behind and self.backlog_mb > 0 else DEFAULT_MB
        if wanted != self.current_mb:
            self.con.execute(f"SET checkpoint_threshold = '{int(wanted)}MiB'")
            self.current_mb = wanted
            log.info("DuckDB folds its WAL at %d MiB now (%s)", wanted, "a backlog" if behind else "caught up")
        return self.current_mb
