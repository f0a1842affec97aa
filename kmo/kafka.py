"""Kafka clients configured the one way kmo uses them.

Producers are idempotent with ``acks=all`` (a retried batch is never written twice) and batch with a
short linger; consumers never auto-commit (offsets are committed by the code that knows the data is
safely written). ``crc32c`` must be installed next to kafka-python, or record CRCs are computed in
pure Python at a fraction of the speed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.partitioner.default import murmur2

from kmo.settings import ConfigError, Settings
from kmo.topics import Topic, Topics

log = logging.getLogger(__name__)

# Largest message kmo produces. The embedded broker is configured to accept it; a production Kafka
# keeps its default (1 MiB) unless raised, so larger records are dead-lettered before they are sent.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024


@lru_cache(maxsize=65536)  # kafka-python's murmur2 is pure Python; keys and principals repeat constantly
def partition_for(key: bytes, partitions: int) -> int:
    """The partition a keyed record lands on with the default partitioner (murmur2, positive, mod n),
    as Java clients, kafka-python and aiokafka compute it: where kmo places events it batches itself."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class KafkaUnavailable(RuntimeError):
    """No broker answered at the configured bootstrap address."""


def bootstrap_file(settings: Settings) -> Path:
    """Where the embedded broker writes its address for other kmo processes."""
    return settings.home / "kafka" / "bootstrap"


def resolve_bootstrap(settings: Settings) -> str:
    """``KMO_KAFKA_BOOTSTRAP`` if set, else the running embedded broker's address.

    Raises:
        ConfigError: when neither is available, saying how to get one.
    """
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    path = bootstrap_file(settings)
    if path.exists():
        return path.read_text().strip()
    raise ConfigError(
        "no Kafka broker: run `kmo broker start` for the embedded one, "
        "or set KMO_KAFKA_BOOTSTRAP=host:port to use an existing Kafka"
    )


PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def security_from_env(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """kafka-python settings for TLS and SASL, from the environment (never the command line):

    ``KMO_KAFKA_SECURITY_PROTOCOL`` (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), ``KMO_KAFKA_SSL_CAFILE``
    (the CA to trust), ``KMO_KAFKA_SSL_CERTFILE``/``KMO_KAFKA_SSL_KEYFILE`` (a client certificate),
    ``KMO_KAFKA_SASL_MECHANISM`` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), ``KMO_KAFKA_SASL_USERNAME`` and
    the password in ``KMO_KAFKA_SASL_PASSWORD`` or, better, a file named by ``KMO_KAFKA_SASL_PASSWORD_FILE``.
    """
    env = os.environ if env is None else env
    protocol = env.get("KMO_KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT"
    if protocol not in PROTOCOLS:
        raise ConfigError(f"KMO_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    config: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        for var, key in (("KMO_KAFKA_SSL_CAFILE", "ssl_cafile"), ("KMO_KAFKA_SSL_CERTFILE", "ssl_certfile"),
                         ("KMO_KAFKA_SSL_KEYFILE", "ssl_keyfile")):  # fmt: skip
            if env.get(var):
                if not Path(env[var]).is_file():
                    raise ConfigError(f"{var} names no readable file: {env[var]}")
                config[key] = env[var]
    if protocol.startswith("SASL"):
        mechanism = env.get("KMO_KAFKA_SASL_MECHANISM") or "PLAIN"
        if mechanism not in MECHANISMS:
            raise ConfigError(f"KMO_KAFKA_SASL_MECHANISM must be one of {', '.join(MECHANISMS)}, got {mechanism!r}")
        user = env.get("KMO_KAFKA_SASL_USERNAME")
        password = env.get("KMO_KAFKA_SASL_PASSWORD")
        if env.get("KMO_KAFKA_SASL_PASSWORD_FILE"):
            try:
                password = Path(env["KMO_KAFKA_SASL_PASSWORD_FILE"]).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"KMO_KAFKA_SASL_PASSWORD_FILE cannot be read: {exc.strerror}") from None
        if not user or not password:
            raise ConfigError(f"{protocol} needs KMO_KAFKA_SASL_USERNAME and a password (…_PASSWORD_FILE)")
        config |= {"sasl_mechanism": mechanism, "sasl_plain_username": user, "sasl_plain_password": password}
    return config


def faust_credentials(env: Mapping[str, str] | None = None) -> Any:
    """The same settings for Faust (aiokafka): None for PLAINTEXT."""
    import ssl

    import faust

    config = security_from_env(env)
    context = None
    if config["security_protocol"] in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=config.get("ssl_cafile"))
        if config.get("ssl_certfile"):
            context.load_cert_chain(config["ssl_certfile"], config.get("ssl_keyfile"))
    if config["security_protocol"].startswith("SASL"):
        return faust.SASLCredentials(
            username=config["sasl_plain_username"],
            password=config["sasl_plain_password"],
            ssl_context=context,
            mechanism=config["sasl_mechanism"],
        )
    return faust.SSLCredentials(context) if context is not None else None


def admin(bootstrap: str, security: dict[str, Any] | None = None) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="kmo-admin",
        request_timeout_ms=15000,
        **(security if security is not None else security_from_env()),
    )


def wait_ready(bootstrap: str, timeout: float = 60.0, security: dict[str, Any] | None = None) -> float:
    """Block until a metadata request succeeds; return the seconds it took.

    Raises:
        KafkaUnavailable: when the broker does not answer within ``timeout``.
    """
    start = time.monotonic()
    last: Exception | None = None
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    # A plain TCP probe first: kafka-python's clients back off for seconds after a refused
    # connection, which would triple the time the embedded broker takes to look ready.
    while time.monotonic() - start < timeout:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            break
        except OSError as exc:
            last = exc
            time.sleep(0.1)
    while time.monotonic() - start < timeout:
        try:
            client = admin(bootstrap, security)
            try:
                client.describe_cluster()
            finally:
                client.close()
            return time.monotonic() - start
        except (KafkaError, OSError, ValueError) as exc:
            last = exc
            time.sleep(0.25)
    raise KafkaUnavailable(f"Kafka at {bootstrap} did not answer within {timeout:.0f}s: {last}")


def ensure_topics(bootstrap: str, topics: Iterable[Topic]) -> list[str]:
    """Create the topics that do not exist yet, with their partition counts; return those created."""
    client = admin(bootstrap)
    try:
        existing = set(client.list_topics())
        wanted = [t for t in topics if t.name not in existing]
        if not wanted:
            return []
        new = [
            NewTopic(t.name, num_partitions=t.partitions, replication_factor=1, topic_configs=dict(t.config))
            for t in wanted
        ]
        # Another process may create one between list and create: that is fine.
        with contextlib.suppress(TopicAlreadyExistsError):
            client.create_topics(new, validate_only=False)
        return [t.name for t in wanted]
    finally:
        client.close()


def ensure_all_topics(settings: Settings, bootstrap: str | None = None) -> Topics:
    """Create every kmo topic (idempotent) and return their names."""
    topics = Topics.for_settings(settings)
    ensure_topics(bootstrap or resolve_bootstrap(settings), topics.all())
    return topics


def make_producer(bootstrap: str, **overrides: Any) -> KafkaProducer:
    """An idempotent, batching producer."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "client_id": "kmo",
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 10,
        "batch_size": 512 * 1024,
        "max_request_size": MAX_MESSAGE_BYTES,
        "retries": 10,
        **security_from_env(),
    }
    config.update(overrides)
    return KafkaProducer(**config)


def produce_confirmed(settings: Any, topic: str, messages: list[tuple[bytes, bytes]]) -> int:
    """Send ``(key, value)`` messages and wait until the broker has taken every one; raises if any
    was refused. For callers that move a mark (or tell a person "published") only after that."""
    if not messages:
        return 0
    producer = make_producer(resolve_bootstrap(settings))
    try:
        futures = [producer.send(topic, key=key, value=value) for key, value in messages]
        producer.flush()
        for future in futures:
            future.get(timeout=30)
    finally:
        producer.close()
    return len(messages)


def make_consumer(
    bootstrap: str, group_id: str | None, *, session_timeout_ms: int = 10000, **overrides: Any
) -> KafkaConsumer:
    """A consumer that never commits on its own."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": group_id,
        "client_id": f"kmo-{group_id or 'reader'}",
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_partition_fetch_bytes": MAX_MESSAGE_BYTES,
        "fetch_max_bytes": 4 * MAX_MESSAGE_BYTES,
        "session_timeout_ms": session_timeout_ms,
        "heartbeat_interval_ms": max(300, session_timeout_ms // 4),
        "max_poll_interval_ms": 300000,
        **security_from_env(),
    }
    config.update(overrides)
    return KafkaConsumer(**config)


def committed_and_end(
    consumer: KafkaConsumer, tps: Iterable[TopicPartition], *, timeout_ms: int | None = None
) -> dict[TopicPartition, tuple[int, int]]:
    """(committed offset of ``consumer``'s group, end offset) per partition, without joining the group.
    The ends are read first: a commit read after them covers everything it says it covers.
    ``timeout_ms`` bounds each request (kafka-python's own default waits as long as it takes)."""
    ends = consumer.end_offsets(list(tps), timeout_ms=timeout_ms)
    return {tp: (consumer.committed(tp, timeout_ms=timeout_ms) or 0, end) for tp, end in ends.items()}


def group_lag(bootstrap: str, group: str, topic: str) -> int:
    """Records on ``topic`` that ``group`` has not committed (the whole topic for a group that never did)."""
    consumer = make_consumer(bootstrap, group)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or set()]
        return sum(end - committed for committed, end in committed_and_end(consumer, tps).values())
    finally:
        consumer.close()
