"""Kafka over TLS and SASL_SSL: the embedded broker's TLS listeners, and kmo's clients configured from
the environment (a CA file, a user and a password file; nothing on the command line)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka.errors import KafkaError

from kmo.kafka import ensure_topics, make_producer, produce_confirmed, security_from_env
from kmo.settings import ConfigError, Settings
from kmo.topics import Topic
from streams.broker.embedded import EmbeddedKafka
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("tls-broker")
    broker = EmbeddedKafka(Settings.from_env({"KMO_HOME": str(home)}), tls=True, heap_mb=256)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def _round_trip(bootstrap: str, settings: Settings, topic: str) -> list[bytes]:
    ensure_topics(bootstrap, [Topic(topic, 1)])
    produce_confirmed(settings.with_(kafka_bootstrap=bootstrap), topic, [(b"k", b"over tls")])
    return [r.value for r in read_all(bootstrap, topic)]


def test_tls_and_sasl_ssl_listeners(tls_broker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    state, tls = tls_broker.state, tls_broker.dir / "tls"
    settings = Settings.from_env({"KMO_HOME": str(tmp_path)})
    assert oct((tls_broker.dir / "server.properties").stat().st_mode & 0o777) == "0o600"  # it holds passwords
    monkeypatch.setenv("KMO_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("KMO_KAFKA_SSL_CAFILE", str(tls / "ca.pem"))
    assert _round_trip(f"127.0.0.1:{state.tls_port}", settings, "tls-topic") == [b"over tls"]

    monkeypatch.setenv("KMO_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KMO_KAFKA_SASL_USERNAME", "kmo")
    monkeypatch.setenv("KMO_KAFKA_SASL_PASSWORD_FILE", str(tls / "sasl-password"))
    assert _round_trip(f"127.0.0.1:{state.sasl_port}", settings, "sasl-topic") == [b"over tls"]

    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password")
    monkeypatch.setenv("KMO_KAFKA_SASL_PASSWORD_FILE", str(wrong))
    with pytest.raises(KafkaError):  # the broker refuses the login (SaslAuthenticationFailed)
        make_producer(f"127.0.0.1:{state.sasl_port}", bootstrap_timeout_ms=3000).close()
    monkeypatch.setenv("KMO_KAFKA_SECURITY_PROTOCOL", "SSL")
    assert [r.value for r in read_all(f"127.0.0.1:{state.tls_port}", "sasl-topic")] == [b"over tls"]


def test_security_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="must be one of"):
        security_from_env({"KMO_KAFKA_SECURITY_PROTOCOL": "TLS"})
    with pytest.raises(ConfigError, match="names no readable file"):
        security_from_env({"KMO_KAFKA_SECURITY_PROTOCOL": "SSL", "KMO_KAFKA_SSL_CAFILE": "/nope.pem"})
    with pytest.raises(ConfigError, match="needs KMO_KAFKA_SASL_USERNAME"):
        security_from_env({"KMO_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"})
    assert security_from_env({}) == {"security_protocol": "PLAINTEXT"}
