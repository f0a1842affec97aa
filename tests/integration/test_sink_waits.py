"""The sink and a warehouse it cannot write: locked by another process at start, or failing writes
(as a full disk does). It says why, holds its batch (no offset moves) and carries on, losing nothing."""

from __future__ import annotations

import logging
import subprocess
import sys
import time

import duckdb
import pytest

import analytics.sink as sink_module
import analytics.warehouse as warehouse_module
from analytics.query import run_query
from analytics.sink import WarehouseSink
from analytics.warehouse import open_warehouse
from ingest.collect import collect
from kmo.settings import Settings
from tests.conftest import FIXTURES

pytestmark = pytest.mark.integration


def _events(settings: Settings) -> int:
    return collect(settings, "aws.cloudtrail", [str(FIXTURES / "cloudtrail")]).events


def test_a_locked_warehouse_is_waited_for(settings: Settings, monkeypatch, caplog) -> None:
    monkeypatch.setattr(sink_module, "RETRY_SECONDS", 0.3)
    open_warehouse(settings.warehouse).close()  # migrated, so the holder only holds the lock
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(settings.warehouse)!r}); time.sleep(4)"]
    )
    time.sleep(1.0)
    produced = _events(settings)
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="analytics.sink"):
        sink = WarehouseSink(settings)
        try:
            sink.run(until_idle=2.0)
        finally:
            sink.close()
    holder.wait(timeout=10)
    assert time.monotonic() - start >= 2.0  # it waited for the holder to let go
    assert any("is locked" in r.getMessage() for r in caplog.records)
    assert run_query(settings, "SELECT count(*) AS n FROM events").to_pylist()[0]["n"] == produced > 0


def test_failing_writes_hold_the_batch_and_nothing_is_lost_or_doubled(settings: Settings, monkeypatch, caplog) -> None:
    monkeypatch.setattr(sink_module, "RETRY_SECONDS", 0.05)
    real = warehouse_module.insert_events  # what the sink's insert_batch calls
    failures = {"left": 3}

    def disk_full(con, table):
        if failures["left"]:
            failures["left"] -= 1
            raise duckdb.IOException("IO Error: could not write file: No space left on device")
        return real(con, table)

    monkeypatch.setattr(warehouse_module, "insert_events", disk_full)
    produced = _events(settings)
    with caplog.at_level(logging.ERROR, logger="analytics.sink"):
        sink = WarehouseSink(settings)
        try:
            stats = sink.run(until_idle=2.0)
        finally:
            sink.close()
    assert stats.write_retries == 3 and any("No space left" in r.getMessage() for r in caplog.records)
    rows = run_query(settings, "SELECT count(*) AS n, count(DISTINCT uid) AS u FROM events").to_pylist()[0]
    assert rows["n"] == rows["u"] == produced
