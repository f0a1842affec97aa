"""The DuckDB warehouse: opening it, migrating it, and writing event batches through Arrow.

Only the sink writes (DuckDB admits one read-write process per file); everything else reads through
the sink's query socket or opens the file read-only when no sink runs (:mod:`analytics.query`).
Rows arrive as Arrow tables, never through ``executemany`` (measured here at under 1k rows/s against
100k+ for Arrow). Events are inserted once per uid, checked against the events of the batch's own
time span (:func:`insert_events` says why not through an index); the smaller tables use
``INSERT ... ON CONFLICT DO NOTHING`` on their keys.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ingest.schema import KeyEvent, type_uid

_MIGRATION = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

EVENT_COLUMNS: tuple[str, ...] = (
    "uid",
    "time",
    "source",
    "provider",
    "class_uid",
    "activity_id",
    "type_uid",
    "op",
    "operation",
    "is_usage",
    "success",
    "error_code",
    "error_message",
    "key_uri",
    "key_version",
    "key_alias",
    "related_keys",
    "actor_principal",
    "actor_type",
    "actor_name",
    "actor_account",
    "actor_invoked_by",
    "src_ip",
    "user_agent",
    "region",
    "account",
    "service",
    "provider_event_id",
    "request_id",
    "context_keys",
    "details",
    "origin",
    "raw_data",
    "ingested_at",
    "kafka_partition",
    "kafka_offset",
)

_ARROW_SCHEMA = pa.schema(
    [
        ("uid", pa.string()),
        ("time", pa.timestamp("us", tz="UTC")),
        ("source", pa.string()),
        ("provider", pa.string()),
        ("class_uid", pa.int32()),
        ("activity_id", pa.int32()),
        ("type_uid", pa.int64()),
        ("op", pa.string()),
        ("operation", pa.string()),
        ("is_usage", pa.bool_()),
        ("success", pa.bool_()),
        ("error_code", pa.string()),
        ("error_message", pa.string()),
        ("key_uri", pa.string()),
        ("key_version", pa.string()),
        ("key_alias", pa.string()),
        ("related_keys", pa.list_(pa.string())),
        ("actor_principal", pa.string()),
        ("actor_type", pa.string()),
        ("actor_name", pa.string()),
        ("actor_account", pa.string()),
        ("actor_invoked_by", pa.string()),
        ("src_ip", pa.string()),
        ("user_agent", pa.string()),
        ("region", pa.string()),
        ("account", pa.string()),
        ("service", pa.string()),
        ("provider_event_id", pa.string()),
        ("request_id", pa.string()),
        ("context_keys", pa.list_(pa.string())),
        ("details", pa.string()),
        ("origin", pa.string()),
        ("raw_data", pa.string()),
        ("ingested_at", pa.timestamp("us", tz="UTC")),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
    ]
)
assert tuple(_ARROW_SCHEMA.names) == EVENT_COLUMNS

# Built from the constant column tuple above, never from input: no injection surface. A batch's
# rows, once per uid, less those already in events within the batch's time span ($lo, $hi: see
# insert_events); RETURNING gives the rows inserted, which usage_rollup counts.
_INSERT = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "  # noqa: S608
    f"SELECT {', '.join(EVENT_COLUMNS)} FROM "
    "(SELECT DISTINCT ON (uid) * FROM incoming ORDER BY uid, kafka_partition, kafka_offset) "
    "WHERE uid NOT IN (SELECT uid FROM events WHERE time BETWEEN $lo AND $hi) "
    "RETURNING time, key_uri, key_version, actor_principal, op, is_usage, success"
)
# usage_rollup_rows is sql/migrations/007_usage_rollup.sql's one definition of a rollup row; the
# merge reads only the rollup's rows of the days the batch touched ($first, $last)
_ADD_USAGE = """
MERGE INTO usage_rollup r
USING (SELECT * FROM usage_rollup_rows('inserted')) b
ON r.day BETWEEN $first AND $last AND r.day = b.day AND r.key_uri = b.key_uri AND r.op = b.op
   AND r.key_version IS NOT DISTINCT FROM b.key_version AND r.actor_principal IS NOT DISTINCT FROM b.actor_principal
WHEN MATCHED THEN UPDATE SET events = r.events + b.events, failures = r.failures + b.failures
WHEN NOT MATCHED THEN INSERT BY NAME
"""
# How far beyond a batch's own times a copy of one of its events is looked for: the same record
# has the same time, but Vault stamps a request once per audit device (its uid leaves the time out)
DUPLICATE_WINDOW = timedelta(minutes=1)


def open_warehouse(path: Path, *, read_only: bool = False, memory_mb: int | None = None) -> duckdb.DuckDBPyConnection:
    """Open (and for writers, create and migrate) the warehouse. New files are 0600 in a 0700 dir.

    ``memory_mb`` caps DuckDB's memory (the long-running sink passes it): by default DuckDB may use
    80 % of RAM, and its page cache keeps growing with the file; past the cap it evicts or spills.
    """
    config = {"memory_limit": f"{memory_mb}MB"} if memory_mb else {}
    if read_only:
        return duckdb.connect(str(path), read_only=True, config=config)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    existed = path.exists()
    con = duckdb.connect(str(path), config=config)
    if not existed:
        os.chmod(path, 0o600)
    migrate(con)
    return con


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every shipped migration, in order."""
    found = []
    for entry in resources.files("sql").joinpath("migrations").iterdir():
        m = _MIGRATION.match(entry.name)
        if m:
            found.append((int(m.group(1)), entry.name, entry.read_text()))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version number: {versions}")
    return found


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction; return their names."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMPTZ)"
    )
    done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for version, name, sql in migrations():
        if version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


def events_to_arrow(events: Sequence[KeyEvent], positions: Sequence[tuple[int, int]] | None = None) -> pa.Table:
    """Columns for ``events``, in ``EVENT_COLUMNS`` order. ``positions`` are (partition, offset).

    A tuple per event, then one transpose (``zip(*rows)``, in C): appending each value to its
    column's list took the sink about as long as DuckDB's insert (bench/README.md)."""
    now = datetime.now(UTC)
    places = positions if positions is not None else [(None, None)] * len(events)
    rows = [
        (
            e.uid,
            e.time,
            e.source,
            str(e.provider),
            int(e.op.event_class),
            e.op.activity_id,
            type_uid(int(e.op.event_class), e.op.activity_id),
            str(e.op),
            e.operation,
            e.op.is_usage,
            e.success,
            e.error_code,
            e.error_message,
            e.key.uri if e.key else None,
            e.key_version,
            e.key_alias,
            [k.uri for k in e.related_keys],
            e.actor.principal,
            e.actor.principal_type,
            e.actor.name,
            e.actor.account,
            e.actor.invoked_by,
            e.src_ip,
            e.user_agent,
            e.region,
            e.account,
            e.service,
            e.provider_event_id,
            e.request_id,
            list(e.context_keys),
            orjson.dumps(e.details).decode() if e.details else None,
            e.origin,
            e.raw,
            now,
            part,
            off,
        )
        for e, (part, off) in zip(events, places, strict=True)
    ]
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in EVENT_COLUMNS]
    return pa.Table.from_arrays(
        [pa.array(col, type=field.type) for col, field in zip(columns, _ARROW_SCHEMA, strict=True)],
        schema=_ARROW_SCHEMA,
    )


def insert_events(con: duckdb.DuckDBPyConnection, table: pa.Table) -> int:
    """Insert inside the caller's transaction the rows whose uid is not there yet (each once), and
    count the new usage events into usage_rollup in it. Returns rows added.

    A copy of an event (a redelivered batch, a collector re-reading a file, a source delivering a
    record twice) is looked for among the events of the batch's time span, not through an index on
    uid: DuckDB keeps such an index in memory whole, which grew with the warehouse until the sink
    ran out (migration 008). The time filter lets DuckDB read only the row groups whose times
    overlap the batch's, so the check costs what a batch's span holds, not the whole history.
    """
    if table.num_rows == 0:
        return 0
    times = pc.min_max(table.column("time"))
    span = {"lo": times["min"].as_py() - DUPLICATE_WINDOW, "hi": times["max"].as_py() + DUPLICATE_WINDOW}
    con.register("incoming", table)
    try:
        inserted = con.sql(_INSERT, params=span).to_arrow_table()  # an INSERT runs at once; its RETURNING rows
    finally:
        _unregister(con, "incoming")
    if inserted.num_rows:
        days = pc.min_max(inserted.column("time"))
        con.register("inserted", inserted)
        try:
            con.execute(_ADD_USAGE, {"first": _utc_day(days["min"].as_py()), "last": _utc_day(days["max"].as_py())})
        finally:
            _unregister(con, "inserted")
    return inserted.num_rows


def _utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _unregister(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop a registered view; after a failed statement the transaction refuses even that, and the
    statement's own error (raised on) is the one worth reading: the next register replaces it."""
    with contextlib.suppress(duckdb.TransactionException):
        con.unregister(name)


def rebuild_usage_rollup(con: duckdb.DuckDBPyConnection) -> None:
    """usage_rollup recounted from events, inside the caller's transaction: for events written other
    than through insert_events (a bulk copy, as the benchmark's query warehouse is built)."""
    con.execute("DELETE FROM usage_rollup")
    con.execute("INSERT INTO usage_rollup SELECT * FROM usage_rollup_rows('events')")


_COVERAGE_COLUMNS = (
    "uid, time, source, collector, status, inputs, records, events, skipped, dead_lettered, "
    "last_event_time, lag_seconds, detail"
)


def _insert_rows(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]], insert_sql: str) -> int:
    """Insert ``rows`` (dicts) through an Arrow table that ``insert_sql`` reads as ``incoming``,
    inside the caller's transaction; returns how many rows were new (``ON CONFLICT DO NOTHING``)."""
    if not rows:
        return 0
    con.register("incoming", pa.Table.from_pylist(rows))
    try:
        row = con.execute(insert_sql).fetchone()
    finally:
        _unregister(con, "incoming")
    return int(row[0]) if row else 0


def insert_heartbeats(con: duckdb.DuckDBPyConnection, docs: Sequence[dict]) -> int:
    """Insert collector heartbeats inside the caller's transaction; replays are ignored."""
    rows = [
        {
            "uid": d["uid"],
            "time": d["time"],
            "source": d["source"],
            "collector": d["collector"],
            "status": d["status"],
            "inputs": d.get("inputs"),
            "records": d.get("records"),
            "events": d.get("events"),
            "skipped": d.get("skipped"),
            "dead_lettered": d.get("dead_lettered"),
            "last_event_time": d.get("last_event_time"),
            "lag_seconds": d.get("lag_seconds"),
            "detail": orjson.dumps(
                {"locations": d.get("locations"), "unreadable": d.get("unreadable"), **(d.get("detail") or {})}
            ).decode(),
        }
        for d in docs
    ]
    return _insert_rows(
        con,
        rows,
        f"INSERT INTO coverage ({_COVERAGE_COLUMNS}) SELECT uid, CAST(time AS TIMESTAMPTZ), source, collector,"  # noqa: S608
        " status, inputs, records, events, skipped, dead_lettered, CAST(last_event_time AS TIMESTAMPTZ),"
        " lag_seconds, detail FROM incoming ON CONFLICT DO NOTHING",
    )


def insert_inventory(con: duckdb.DuckDBPyConnection, docs: Sequence[dict]) -> int:
    """Insert inventory snapshot rows inside the caller's transaction; re-published rows are ignored."""
    rows = [
        {
            "uid": d["uid"],
            "snapshot_id": d["snapshotId"],
            "taken_at": d["takenAt"],
            "system": d["system"],
            "key_id": d["keyInfo"]["keyId"],
            "status": d["keyInfo"].get("status"),
            "state": d.get("state"),
            "version": d["keyInfo"].get("version"),
            "algorithm": d["keyInfo"].get("algorithm"),
            "key_size": d["keyInfo"].get("keySize"),
            "created_at": d["keyInfo"].get("createdAt"),
            "current_since": d.get("currentSince"),
            "destroy_at": d.get("destroyAt"),
            "doc": orjson.dumps(d).decode(),
        }
        for d in docs
    ]
    return _insert_rows(
        con,
        rows,
        "INSERT INTO inventory_snapshots SELECT uid, snapshot_id, CAST(taken_at AS TIMESTAMPTZ), system, key_id,"
        " status, state, version, algorithm, key_size, CAST(created_at AS TIMESTAMPTZ),"
        " CAST(current_since AS TIMESTAMPTZ), CAST(destroy_at AS TIMESTAMPTZ), doc"
        " FROM incoming ON CONFLICT DO NOTHING",
    )


def _severity_name(severity_id: Any) -> str | None:
    from streams.findings import Severity

    try:
        return Severity(severity_id).name.lower()
    except ValueError:
        return None


def insert_findings(con: duckdb.DuckDBPyConnection, docs: Sequence[dict]) -> int:
    """Upsert findings (OCSF 2004) inside the caller's transaction, each uid in its latest state:
    the highest count wins, so a replayed older state never overwrites a newer one."""
    latest: dict[str, dict] = {}
    for d in docs:  # one row per uid per statement (DuckDB updates a row once per command)
        uid = d["finding_info"]["uid"]
        if uid not in latest or d.get("count", 0) >= latest[uid].get("count", 0):
            latest[uid] = d
    now = datetime.now(UTC).isoformat()
    rows = []
    for uid, d in latest.items():
        info = d["finding_info"]
        rows.append(
            {
                "uid": uid,
                "rule_id": info.get("analytic", {}).get("uid"),
                "title": info.get("title"),
                "finding_type": (info.get("types") or [None])[0],
                "severity_id": d.get("severity_id"),
                "severity": _severity_name(d.get("severity_id")),
                "action": (d.get("unmapped") or {}).get("recommended_action"),
                "message": d.get("message"),
                "actor": ((d.get("actor") or {}).get("user") or {}).get("uid"),
                "keys": [r.get("uid") for r in d.get("resources") or []],
                "first_seen": info.get("first_seen_time_dt"),
                "last_seen": info.get("last_seen_time_dt"),
                "count": d.get("count"),
                "evidence": [e.get("uid") for e in info.get("related_events") or []],
                "doc": orjson.dumps(d).decode(),
                "received_at": now,
            }
        )
    return _insert_rows(
        con,
        rows,
        "INSERT INTO findings SELECT uid, rule_id, title, finding_type, severity_id, severity, action, message, actor,"
        " keys, CAST(first_seen AS TIMESTAMPTZ), CAST(last_seen AS TIMESTAMPTZ), count, evidence, doc,"
        " CAST(received_at AS TIMESTAMPTZ) FROM incoming"
        " ON CONFLICT (uid) DO UPDATE SET title = excluded.title, message = excluded.message, keys = excluded.keys,"
        " first_seen = excluded.first_seen, last_seen = excluded.last_seen, count = excluded.count,"
        " evidence = excluded.evidence, doc = excluded.doc, received_at = excluded.received_at"
        " WHERE excluded.count >= findings.count",
    )


def insert_actions(con: duckdb.DuckDBPyConnection, docs: Sequence[dict]) -> int:
    """Insert orchestrator audit entries inside the caller's transaction; re-shipped entries are ignored."""
    rows = [
        {
            "hash": d["hash"],
            "seq": d["seq"],
            "time": d["time"],
            "operation": d.get("operation"),
            "outcome": d.get("outcome"),
            "actor": d.get("actor"),
            "system": d.get("system"),
            "key_id": d.get("keyId"),
            "operation_id": d.get("operationId"),
            "trigger": d.get("trigger"),
            "entry": orjson.dumps(d).decode(),
        }
        for d in docs
    ]
    return _insert_rows(
        con,
        rows,
        "INSERT INTO actions SELECT hash, seq, CAST(time AS TIMESTAMPTZ), operation, outcome, actor, system,"
        " key_id, operation_id, trigger, entry FROM incoming ON CONFLICT DO NOTHING",
    )


def insert_batch(
    con: duckdb.DuckDBPyConnection,
    events: pa.Table | None,
    *,
    heartbeats: Sequence[dict] = (),
    actions: Sequence[dict] = (),
    inventory: Sequence[dict] = (),
    findings: Sequence[dict] = (),
) -> int:
    """Everything the warehouse keeps, inside the caller's transaction: the sink and the demo's
    offline warehouse write through this one call, so a new kind of document is added once.
    Returns the events added."""
    added = insert_events(con, events) if events is not None else 0
    insert_heartbeats(con, heartbeats)
    insert_actions(con, actions)
    insert_inventory(con, inventory)
    insert_findings(con, findings)
    return added
