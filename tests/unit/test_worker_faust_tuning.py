"""Two Faust defaults the worker overrides, each of which held its streams (bench/README.md):

* the consumer asks the broker to hold a fetch at most its own bound, not Faust's fixed 1.5 s: built
  exactly as Faust builds it when the worker starts (aiokafka connects only at ``start()``), and the
  value aiokafka hands its fetcher read back;
* the table writes of a commit queue in Faust's producer buffer without its conductor stopping the
  streams until they drain: Faust's own ``wait_until_ebb``, which the conductor awaits before
  handing each record on, with a commit's worth of writes pending.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest

from streams.faust_app import DEFAULT_FETCH_WAIT_MS, STATE_WRITES_BUFFERED, App


def _fetch_wait_of(app: App) -> int:
    async def build() -> int:
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            return consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()  # never started: closes nothing open, keeps aiokafka quiet

    return asyncio.run(build())


@pytest.mark.parametrize("wait_ms", [7, DEFAULT_FETCH_WAIT_MS])
def test_consumer_fetch_waits_at_most_the_apps_bound(wait_ms: int) -> None:
    app = App("kmo-test", broker="kafka://127.0.0.1:1", fetch_wait_ms=wait_ms, store="memory://", web_enabled=False)
    assert _fetch_wait_of(app) == wait_ms


def test_default_is_far_below_fausts_own() -> None:
    app = App("kmo-test", broker="kafka://127.0.0.1:1", store="memory://", web_enabled=False)
    # Faust 0.15.3 fixes 1500 ms: a quiet partition held the others' records that long (faust_app)
    assert _fetch_wait_of(app) == DEFAULT_FETCH_WAIT_MS <= 50


def test_worker_builds_its_app_with_both(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import streams.worker as worker
    from kmo.settings import Settings

    monkeypatch.setattr(worker, "ensure_all_topics", lambda *a, **k: SimpleNamespace(**dict.fromkeys(
        ("events", "findings", "dlq"), SimpleNamespace(name="t", partitions=6))))  # fmt: skip
    monkeypatch.setattr(worker, "resolve_bootstrap", lambda settings: "127.0.0.1:1")
    monkeypatch.setattr("kmo.kafka.ensure_topics", lambda *a, **k: None)
    monkeypatch.setenv("KMO_WORKER_FETCH_WAIT_MS", "9")
    monkeypatch.setenv("KMO_WORKER_STALL_SECONDS", "0")
    app = worker.make_app(Settings.from_env({"KMO_HOME": str(tmp_path)}))
    assert _fetch_wait_of(app) == 9
    assert app.producer.buffer.max_messages == STATE_WRITES_BUFFERED


def _ebb_waits(app: Any, pending: int) -> bool:
    """Does the conductor's wait on the producer buffer stop a record with ``pending`` writes queued?"""
    buffer = app.producer.buffer
    waited: list[int | None] = []

    async def flush_atmost(max_messages: int | None) -> int:  # what the conductor would wait on
        waited.append(max_messages)
        return 0

    buffer.flush_atmost = flush_atmost

    async def check() -> None:
        for _ in range(pending):
            buffer.pending.put_nowait(object())
        await buffer.wait_until_ebb()

    asyncio.run(check())
    return bool(waited)


def test_a_commits_state_writes_do_not_stop_the_streams() -> None:
    app = faust.App("kmo-test", broker="kafka://127.0.0.1:1", store="memory://", web_enabled=False)
    assert _ebb_waits(app, 250)  # Faust's own limit (100): a commit's writes held every stream
    app = App("kmo-test", broker="kafka://127.0.0.1:1", store="memory://", web_enabled=False)
    assert not _ebb_waits(app, 250)
    assert _ebb_waits(app, STATE_WRITES_BUFFERED + 1)  # still bounded
