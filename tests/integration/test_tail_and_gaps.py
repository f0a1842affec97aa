"""File following (truncation, partial lines, restart from checkpoint) and CloudHSM sequence gaps,
through the real collector and broker."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from ingest.checkpoints import CheckpointStore
from ingest.collect import collect, make_collector
from ingest.schema import KeyOp
from ingest.tail import FileTailer
from kmo.kafka import ensure_all_topics, make_producer
from kmo.settings import Settings
from kmo.topics import Topics
from tests.conftest import FIXTURES
from tests.kafka_helpers import read_events

pytestmark = pytest.mark.integration


def vault_pair(n: int, path: str = "transit/encrypt/k") -> str:
    base = {
        "time": f"2026-11-20T10:00:{n:02d}Z",
        "auth": {"display_name": "app", "policies": ["app"]},
        "request": {
            "id": f"req-{n:04d}",
            "operation": "update",
            "mount_type": "transit",
            "mount_point": "transit/",
            "path": path,
            "remote_address": "10.0.0.1",
        },
    }
    response = {**base, "type": "response", "response": {"data": {"key_version": 1}}}
    return json.dumps({**base, "type": "request"}) + "\n" + json.dumps(response) + "\n"


def events_in(settings: Settings) -> list:
    return read_events(settings.kafka_bootstrap, Topics.for_settings(settings).events.name)


def test_tailer_handles_partial_lines_truncation_and_restart(settings: Settings, tmp_path: Path) -> None:
    ensure_all_topics(settings)
    log = tmp_path / "audit.log"
    log.write_text(vault_pair(1) + vault_pair(2))
    producer = make_producer(settings.kafka_bootstrap)
    store = CheckpointStore(settings.state_dir / "checkpoints.sqlite3")

    def tailer() -> FileTailer:
        return FileTailer(make_collector(settings, "vault.audit", producer, store), log, store, unanswered_after=0.0)

    first = tailer()
    assert first.poll() == 4
    half = vault_pair(3)
    with log.open("a") as fh:
        fh.write(half[:50])  # a line still being written
    assert first.poll() == 0
    with log.open("a") as fh:
        fh.write(half[50:])
    assert first.poll() == 2
    assert [e.request_id for e in events_in(settings)] == ["req-0001", "req-0002", "req-0003"]

    # copytruncate-style rotation: the file is emptied in place and written again
    log.write_text(vault_pair(4))
    assert first.poll() == 2

    # a restart resumes from the checkpoint: nothing is produced twice
    with log.open("a") as fh:
        fh.write(
            vault_pair(5)
            + json.dumps(
                {
                    "time": "2026-11-20T10:01:00Z",
                    "type": "request",
                    "request": {
                        "id": "req-lonely",
                        "operation": "update",
                        "mount_type": "transit",
                        "mount_point": "transit/",
                        "path": "transit/decrypt/k",
                    },
                }
            )
            + "\n"
        )
    second = tailer()
    assert second.poll() == 4  # pair 5, the lonely request, and its expiry as an unanswered event
    ids = [e.request_id for e in events_in(settings)]
    assert ids == ["req-0001", "req-0002", "req-0003", "req-0004", "req-0005", "req-lonely"]
    lonely = events_in(settings)[-1]
    assert (lonely.op, lonely.success, lonely.error_code) == (KeyOp.DECRYPT, False, "NoResponseLogged")
    producer.close()
    store.close()


def test_follow_stops_cleanly_on_its_event(settings: Settings, tmp_path: Path) -> None:
    from ingest.collect import follow

    log = tmp_path / "audit.log"
    log.write_text(vault_pair(7))
    stop = threading.Event()
    done: list = []
    thread = threading.Thread(
        target=lambda: done.append(follow(settings, "vault.audit", str(log), stop, poll_seconds=0.1))
    )
    thread.start()
    stop.set()
    thread.join(timeout=30)
    assert done and done[0].events == 1


def test_cloudhsm_sequence_gaps_become_events(settings: Settings, tmp_path: Path) -> None:
    summary = collect(settings, "aws.cloudhsm", [str(FIXTURES / "cloudhsm" / "hsm-abc123.log")])
    assert (summary.events, summary.derived_events) == (3, 1)
    gaps = [e for e in events_in(settings) if e.op is KeyOp.AUDIT_GAP]
    assert len(gaps) == 1
    gap = gaps[0]
    assert gap.details["expected_sequence"] == 0x12 and gap.details["found_sequence"] == 0x14
    assert "2 audit record(s) missing" in gap.error_message
    again = collect(settings, "aws.cloudhsm", [str(FIXTURES / "cloudhsm" / "hsm-abc123.log")])
    assert again.derived_events == 0 and again.inputs_already_done == 1
