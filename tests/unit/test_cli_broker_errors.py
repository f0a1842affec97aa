"""Kafka away: a one-shot command says so and exits 3 with no traceback; a ``--watch`` collector
says so and tries again on its next pass (the chaos run saw one die of a broker restart)."""

from __future__ import annotations

import threading

from kafka.errors import KafkaTimeoutError

import ingest.collect
import kmo.cli
from ingest.runner import RunSummary


def test_a_one_shot_ingest_exits_3_with_a_message(monkeypatch, capsys, tmp_path) -> None:
    def unreachable(*args, **kwargs):
        raise KafkaTimeoutError("Unable to bootstrap from 127.0.0.1:1")

    monkeypatch.setattr(ingest.collect, "collect", unreachable)
    assert kmo.cli.main(["ingest", "cloudtrail", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert "Kafka is unreachable or refused a write (KafkaTimeoutError" in err and "Traceback" not in err


def test_a_watching_collector_survives_the_broker_going_away(monkeypatch, capsys, tmp_path) -> None:
    calls: list[int] = []
    stop = threading.Event()

    def flaky(settings, source, paths, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise KafkaTimeoutError("Unable to bootstrap")
        stop.set()  # the second pass worked: stop watching
        return RunSummary(source=source)

    monkeypatch.setattr(ingest.collect, "collect", flaky)
    monkeypatch.setattr(kmo.cli, "_stop_on_signal", lambda: stop)
    assert kmo.cli.main(["ingest", "cloudtrail", str(tmp_path), "--watch", "0.01"]) == 0
    assert len(calls) == 2
    assert "trying again in 0.01 s" in capsys.readouterr().err
