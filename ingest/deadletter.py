"""Dead letters: records kmo could not use, kept with their exact bytes and the reason.

A dead letter's Kafka value is the raw bytes, untouched (no decoding, so non-UTF-8 input cannot
break the error path); what went wrong travels in headers. A stretch too large for a Kafka message
is written to ``$KMO_HOME/quarantine/<sha256>.bin`` (0600) and the message points at it, so nothing
is lost even when the broker's size limit would refuse it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kafka import KafkaProducer

INLINE_LIMIT = 1024 * 1024  # Kafka's default max.message.bytes; production brokers often keep it
_REASON_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One unusable record."""

    raw: bytes
    stage: str  # "ingest", "sink", "stream"
    source: str  # parser/source name, or the topic it was read from
    origin: str  # input and position
    reason: str


def headers_for(letter: DeadLetter, *, sha256: str, quarantined: Path | None) -> list[tuple[str, bytes]]:
    headers = [
        ("kmo-stage", letter.stage.encode()),
        ("kmo-source", letter.source.encode()),
        ("kmo-origin", letter.origin.encode("utf-8", "backslashreplace")),
        ("kmo-reason", letter.reason[:_REASON_LIMIT].encode("utf-8", "backslashreplace")),
        ("kmo-sha256", sha256.encode()),
        ("kmo-size", str(len(letter.raw)).encode()),
        ("kmo-time", datetime.now(UTC).isoformat().encode()),
    ]
    if quarantined is not None:
        headers.append(("kmo-quarantine", str(quarantined).encode()))
    return headers


class DeadLetterWriter:
    """Sends dead letters to the DLQ topic through a shared producer; the caller flushes."""

    def __init__(self, producer: KafkaProducer, topic: str, quarantine_dir: Path) -> None:
        self.producer = producer
        self.topic = topic
        self.quarantine_dir = quarantine_dir
        self.count = 0

    def send(self, letter: DeadLetter):  # -> kafka FutureRecordMetadata
        sha = hashlib.sha256(letter.raw).hexdigest()
        quarantined = None
        value = letter.raw
        if len(letter.raw) > INLINE_LIMIT:
            self.quarantine_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            quarantined = self.quarantine_dir / f"{sha}.bin"
            if not quarantined.exists():
                fd = os.open(quarantined, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(letter.raw)
                    fh.flush()
                    os.fsync(fh.fileno())
            value = b""
        self.count += 1
        return self.producer.send(
            self.topic,
            key=letter.origin.encode("utf-8", "backslashreplace"),
            value=value,
            headers=headers_for(letter, sha256=sha, quarantined=quarantined),
        )
