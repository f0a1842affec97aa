"""The sink and a warehouse it cannot write: locked by another process at start, or failing writes
(as a full disk does). It says why, holds its batch (no offset moves) and carries on, losing nothing.
And the sink and a consumer that stops reading: the guard replaces it, losing nothing."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time

import duckdb
import pytest

import analytics.sink as sink_module
import analytics.warehouse as warehouse_module
from analytics.query import run_query
from analytics.sink import WarehouseSink
from analytics.warehouse import open_warehouse
from ingest.collect import collect
from kmo.demo.cloudtrail_files import render_files, write_files
from kmo.demo.estate import Estate
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


def _count(settings: Settings) -> int:
    return int(run_query(settings, "SELECT count(*) AS n FROM events").to_pylist()[0]["n"])


def _sink_with_a_consumer_that_stops(settings: Settings, monkeypatch, stall_seconds: str) -> WarehouseSink:
    import kmo.faults

    monkeypatch.setenv("KMO_FAULT", "sink.stop_fetching")  # after its first batch, it reads nothing more
    monkeypatch.setenv("KMO_SINK_STALL_SECONDS", stall_seconds)
    monkeypatch.setattr(kmo.faults, "_hits", {})
    return WarehouseSink(settings)


def _run_in_thread(sink: WarehouseSink) -> threading.Thread:
    thread = threading.Thread(target=sink.run, daemon=True)
    thread.start()
    return thread


def _more_events(settings: Settings, tmp_path) -> int:
    write_files(tmp_path / "trail", render_files(Estate(seed=5, days=1, keys_per_account=6).generate()))
    return collect(settings, "aws.cloudtrail", [str(tmp_path / "trail")]).events


def _wait_for(settings: Settings, rows: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while (n := _count(settings)) < rows and time.monotonic() < deadline:
        time.sleep(0.2)
    return n


def test_a_consumer_that_stops_reading_is_replaced_and_nothing_is_lost(
    settings: Settings, monkeypatch, caplog, tmp_path
) -> None:
    """What kafka-python's consumer sometimes does after a broker restart (it never finds its
    coordinator again: reads nothing, says nothing), injected: the guard sees records waiting and
    no commit, the sink takes a new consumer between batches, and every event lands once."""
    first = _events(settings)
    with caplog.at_level(logging.WARNING, logger="analytics.sink_guard"):
        # 3 s: the guard ends the process if the new consumer has not committed within three times
        # that of the remedy, and joining the group took over 4 s once in a loaded full run
        sink = _sink_with_a_consumer_that_stops(settings, monkeypatch, "3")
        exits: list[int] = []
        sink.guard.exit_process = exits.append  # a guard that would end the process: recorded, not done
        thread = _run_in_thread(sink)
        try:
            assert _wait_for(settings, first, 30) == first
            second = _more_events(settings, tmp_path)
            assert second > 100
            assert _wait_for(settings, first + second, 30) == first + second
        finally:
            sink.stop_event.set()
            thread.join(timeout=30)
            sink.close()
    assert exits == []
    assert any("replacing the sink's Kafka consumer" in r.getMessage() for r in caplog.records)
    rows = run_query(settings, "SELECT count(*) AS n, count(DISTINCT uid) AS u FROM events").to_pylist()[0]
    assert rows["n"] == rows["u"] == first + second


def test_without_the_guard_the_stopped_consumer_reads_nothing_more(settings: Settings, monkeypatch, tmp_path) -> None:
    """The control: the injected fault is real, and the guard is what mends it."""
    first = _events(settings)
    sink = _sink_with_a_consumer_that_stops(settings, monkeypatch, "0")
    assert sink.guard is None
    thread = _run_in_thread(sink)
    try:
        # the first batch is one transaction, and the fault stops the consumer right after it: what
        # it wrote (all of the first events, or, on a slow first poll, some, or only the collector's
        # heartbeat) is all there will be
        deadline = time.monotonic() + 30
        while sink.stats.batches < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sink.stats.batches >= 1
        written = _count(settings)
        assert written <= first
        _more_events(settings, tmp_path)
        assert _wait_for(settings, first + 1, 6) == written, "no new rows: the stopped consumer stays stopped"
    finally:
        sink.stop_event.set()
        thread.join(timeout=30)
        sink.close()
