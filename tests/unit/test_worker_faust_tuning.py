"""The worker's consumer asks the broker to hold a fetch at most its own bound, not Faust's fixed 1.5 s
(streams.faust_app says why). No broker: the consumer is built exactly as Faust builds it when the
worker starts (aiokafka connects only at ``start()``), and the value aiokafka hands its fetcher is
read back.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from streams.faust_app import DEFAULT_FETCH_WAIT_MS, App


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


def test_worker_builds_its_app_with_the_bound(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
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
