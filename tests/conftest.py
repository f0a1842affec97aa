"""Shared fixtures: one real embedded Kafka broker per test session, isolated topics per test."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kmo.settings import Settings

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KMO_SHARED_DIR", REPO.parent / "shared"))
CORPUS = SHARED / "corpus"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true", help="rewrite *.expected.json golden files")


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared corpus of public audit-log samples (always present in CI)."""
    if not CORPUS.is_dir():
        pytest.skip(f"../shared/corpus is not present at {CORPUS}: the conformance tests need it")
    return CORPUS


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Apache Kafka for the whole session: the embedded broker, or KMO_TEST_KAFKA_BOOTSTRAP."""
    external = os.environ.get("KMO_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    from streams.broker.embedded import EmbeddedKafka

    home = tmp_path_factory.mktemp("broker")
    broker = EmbeddedKafka(Settings.from_env({"KMO_HOME": str(home)}))
    bootstrap = broker.start()
    try:
        yield bootstrap
    finally:
        broker.stop()


@pytest.fixture(autouse=True)
def _state_outside_the_repository(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A test that runs kmo without choosing a KMO_HOME writes to a temporary one, never to ./.kmo in
    the checkout (where it would, for one, make `make demo` refuse a home that is not a demo's)."""
    monkeypatch.setenv("KMO_HOME", str(tmp_path_factory.mktemp("home")))


def make_settings(home: Path, bootstrap: str | None = None, **extra: str) -> Settings:
    env = {
        "KMO_HOME": str(home),
        "KMO_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:10]}.",
        "KMO_KAFKA_SESSION_TIMEOUT_MS": "3000",  # a killed consumer's partitions move on quickly
    }
    if bootstrap:
        env["KMO_KAFKA_BOOTSTRAP"] = bootstrap
    env.update(extra)
    return Settings.from_env(env)


@pytest.fixture
def settings(tmp_path: Path, kafka_bootstrap: str) -> Settings:
    """Settings for one test: its own KMO_HOME and its own topics on the session broker."""
    return make_settings(tmp_path / "kmo", kafka_bootstrap)


@pytest.fixture
def offline_settings(tmp_path: Path) -> Settings:
    """Settings for tests that need no broker."""
    return make_settings(tmp_path / "kmo")


def stop_process(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM (a kmo process's clean shutdown), SIGKILL if it takes longer than ``timeout``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def kmo_env(settings: Settings) -> dict[str, str]:
    """Environment for running the kmo CLI as a subprocess with these settings."""
    env = dict(os.environ)
    env.update(
        KMO_HOME=str(settings.home),
        KMO_TOPIC_PREFIX=settings.topic_prefix,
        KMO_EVENTS_PARTITIONS=str(settings.events_partitions),
        KMO_KAFKA_SESSION_TIMEOUT_MS=str(settings.session_timeout_ms),
    )
    if settings.kafka_bootstrap:
        env["KMO_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
    env.pop("KMO_FAULT", None)
    return env
