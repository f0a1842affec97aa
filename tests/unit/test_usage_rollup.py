"""usage_rollup (sql/migrations/007_usage_rollup.sql) holds exactly what counting ``events`` gives,
whatever is redelivered, and usage_by_key read through it answers exactly as it did from ``events``
alone, for windows that cut days anywhere."""

from __future__ import annotations

from datetime import UTC, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import analytics.warehouse as warehouse
from analytics.saved_queries import load_all
from analytics.warehouse import EVENT_COLUMNS, insert_events, migrate, open_warehouse, rebuild_usage_rollup
from ingest.schema import format_timestamp
from kmo.demo.offline_warehouse import build
from kmo.settings import Settings

ROLLUP = "SELECT * FROM usage_rollup ORDER BY ALL"
RECOUNTED = "SELECT * FROM usage_rollup_rows('events') ORDER BY ALL"

# usage_by_key as it was before the rollup, from events alone: the definition of the right answer
FROM_EVENTS = """
WITH per_op AS (
    SELECT key_uri, key_version, actor_principal,
           DATE '1970-01-01' + CAST(fdiv(epoch_us(time), 86400000000) AS INTEGER) AS day,
           op, count(*) AS events, count(*) FILTER (WHERE NOT success) AS failures
    FROM events
    WHERE is_usage AND key_uri IS NOT NULL
      AND time >= CAST($since AS TIMESTAMPTZ) AND time < CAST($until AS TIMESTAMPTZ)
    GROUP BY ALL
)
SELECT key_uri, key_version, actor_principal, day, CAST(sum(events) AS BIGINT) AS events,
       CAST(sum(failures) AS BIGINT) AS failures, list(op ORDER BY op) AS ops
FROM per_op
GROUP BY key_uri, key_version, actor_principal, day
ORDER BY day, key_uri, key_version NULLS FIRST, actor_principal NULLS FIRST
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo estate's warehouse (every source, written through insert_events)."""
    home = tmp_path_factory.mktemp("rollup")
    settings = Settings.from_env({"KMO_HOME": str(home)})
    build(settings.warehouse, home / "estate")
    return settings.warehouse


@pytest.fixture
def con(demo: Path, tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """A writable copy of the demo warehouse, for one test."""
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(demo.read_bytes())
    connection = open_warehouse(copy)
    yield connection
    connection.close()


def all_events(con: duckdb.DuckDBPyConnection) -> pa.Table:
    return con.sql(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events ORDER BY uid").to_arrow_table()  # noqa: S608


def test_the_rollup_is_the_events_counted(con: duckdb.DuckDBPyConnection) -> None:
    rollup = con.execute(ROLLUP).fetchall()
    usage = con.execute("SELECT count(*) FROM events WHERE is_usage AND key_uri IS NOT NULL").fetchone()[0]
    assert rollup == con.execute(RECOUNTED).fetchall()
    assert sum(r[5] for r in rollup) == usage > 1000
    assert any(r[2] is None for r in rollup), "the fixture should hold usage events without a key version"


def test_a_redelivered_batch_counts_once(con: duckdb.DuckDBPyConnection) -> None:
    before = con.execute(ROLLUP).fetchall()
    events = all_events(con)
    assert insert_events(con, events) == 0  # the whole warehouse again: nothing new
    assert con.execute(ROLLUP).fetchall() == before
    # half old, half new (new uids), and the new ones twice within the batch: each new event once
    half = events.slice(0, events.num_rows // 2)
    renamed = half.set_column(0, "uid", pa.array([f"{u}-again" for u in half.column("uid").to_pylist()]))
    batch = pa.concat_tables([events, renamed, renamed])
    assert insert_events(con, batch) == half.num_rows
    after = con.execute(ROLLUP).fetchall()
    assert after == con.execute(RECOUNTED).fetchall() and after != before


def test_a_warehouse_from_before_the_rollup_is_migrated(tmp_path: Path, con, monkeypatch) -> None:
    """Its events kept (without the index on uid, migration 008), the rollup counted from them."""
    events = all_events(con)
    old = duckdb.connect(str(tmp_path / "old.duckdb"))
    shipped = warehouse.migrations()
    monkeypatch.setattr(warehouse, "migrations", lambda: [m for m in shipped if m[0] < 7])
    migrate(old)
    old.register("incoming", events)
    old.execute("INSERT INTO events SELECT * FROM incoming")  # as a sink before migration 7 wrote them
    keys = (
        "SELECT constraint_type FROM duckdb_constraints() WHERE table_name = 'events' AND constraint_type <> 'NOT NULL'"
    )
    assert old.execute(keys).fetchall() == [("PRIMARY KEY",)]
    monkeypatch.setattr(warehouse, "migrations", lambda: shipped)
    assert migrate(old) == ["007_usage_rollup.sql", "008_events_without_uid_index.sql"]
    assert old.execute(keys).fetchall() == []
    assert all_events(old) == events
    assert old.execute(ROLLUP).fetchall() == con.execute(ROLLUP).fetchall()
    # the analyst view 002 made, now over the rollup: the same answer as counting events
    view = old.execute("SELECT key_uri, day, op, events, failures, principals FROM usage_daily ORDER BY ALL").fetchall()
    counted = old.execute(
        "SELECT key_uri, CAST(date_trunc('day', time AT TIME ZONE 'UTC') AS DATE) AS day, op, count(*),"
        " count(*) FILTER (WHERE NOT success), count(DISTINCT actor_principal) FROM events"
        " WHERE is_usage AND key_uri IS NOT NULL GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert view == counted and len(view) > 100
    old.close()


def test_rebuild_recounts(con: duckdb.DuckDBPyConnection) -> None:
    before = con.execute(ROLLUP).fetchall()
    con.execute("UPDATE usage_rollup SET events = events + 1")
    rebuild_usage_rollup(con)
    assert con.execute(ROLLUP).fetchall() == before


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Chatham"])
def test_usage_by_key_answers_as_from_events_for_any_window(con: duckdb.DuckDBPyConnection, zone: str) -> None:
    """Windows whose ends fall at midnight, inside a day, on the same day, the wrong way round,
    and around all the data; in a session zone with a 12:45 offset."""
    con.execute(f"SET TimeZone = '{zone}'")
    query = load_all()["usage_by_key"]
    [(first, last)] = con.execute("SELECT min(time), max(time) FROM events WHERE is_usage").fetchall()
    first, last = first.astimezone(UTC), last.astimezone(UTC)  # the same windows in either zone
    midnight = first.replace(hour=0, minute=0, second=0, microsecond=0)  # UTC midnight
    hour, day = timedelta(hours=1), timedelta(days=1)
    windows = [
        (first - 10 * day, last + 10 * day),
        (first, last),  # the newest event itself falls outside: until is exclusive
        (midnight, midnight + 2 * day),
        (midnight + day, midnight + day + timedelta(microseconds=1)),
        (midnight + 7 * hour, midnight + day + 5 * hour),
        (midnight + 3 * hour, midnight + 9 * hour),
        (midnight + 23 * hour, midnight + day),
        (midnight + day, midnight + day),
        (midnight + day + 5 * hour, midnight + 5 * hour),
        (midnight - 30 * day, midnight - day),
    ]
    answered = 0
    for since, until in windows:
        params = query.bind({"since": format_timestamp(since), "until": format_timestamp(until)})
        got = con.sql(query.sql, params=params).to_arrow_table().to_pylist()
        want = con.sql(FROM_EVENTS, params=params).to_arrow_table().to_pylist()
        assert got == want, (since, until)
        answered += bool(want)
    assert answered >= 6  # most windows hold usage: the comparison is not of empty answers


def test_a_copy_stamped_a_little_apart_is_still_a_copy(con: duckdb.DuckDBPyConnection) -> None:
    """Vault stamps one request once per audit device, and its uid leaves the time out: a copy
    within DUPLICATE_WINDOW of the first is skipped, even in a later batch that spans nothing else."""
    one = all_events(con).slice(0, 1)
    later = one.set_column(1, "time", pc.add(one.column("time"), pa.scalar(timedelta(seconds=30))))
    assert insert_events(con, later) == 0
    apart = one.set_column(1, "time", pc.add(one.column("time"), pa.scalar(2 * warehouse.DUPLICATE_WINDOW)))
    assert insert_events(con, apart) == 1  # beyond the window: taken as the distinct record it would be
