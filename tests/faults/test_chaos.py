"""The accounted chaos run (``tests/faults/chaos.py``) as a test: processes SIGKILLed at random, the
broker SIGKILLed and restarted, a second worker joining and leaving, and afterwards every record,
finding and action accounted for. In ``make faults``, which ``make test`` runs after the main suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults.chaos import ChaosConfig, run_chaos

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(600)]


def test_every_record_finding_and_action_is_accounted_for_after_chaos(tmp_path: Path) -> None:
    figures = run_chaos(ChaosConfig(seed=7), tmp_path)
    timeline = figures.pop("timeline")
    print("\n".join(timeline))
    print(json.dumps(figures, indent=2))
    assert figures["caught_up"], timeline[-1]
    # the faults happened, mid-stream
    assert figures["broker_restarts"] == 1
    assert sum(figures["kills"].values()) >= 8
    assert {"collector-cloudtrail", "sink", "worker", "responder"} <= set(figures["kills"])
    assert figures["second_worker_batches"] > 0, "the second worker never got partitions: no rebalance to speak of"
    # nothing died of the broker's absence; only a worker or sink whose Kafka client stopped reading
    # may exit, with 75, for a restart (each first tries to mend it in place)
    assert all(
        name.startswith(("worker", "sink")) and set(codes) <= {75}
        for name, codes in figures["exits_on_their_own"].items()
    ), figures.get("last_words")
    # every input record: an event exactly once in DuckDB, or a dead letter, or a non-key record skipped
    assert figures["events_in_duckdb"] == figures["events_distinct"] == figures["events_expected"] > 3000
    assert figures["events_missing"] == figures["events_unexpected"] == figures["duplicates_in_duckdb"] == 0
    assert figures["dead_letters_distinct"] == figures["dead_letters_expected"] >= 4
    assert figures["dead_letters_missing"] == figures["dead_letters_unexpected"] == 0
    # the findings kmo detect finds in the same files, each once in the warehouse
    assert figures["findings_missing"] == figures["findings_unexpected"] == []
    assert figures["findings_count_differs"] == [], "a redelivered event was counted twice"
    assert figures["findings_rows_in_duckdb"] == figures["findings_published"] == figures["findings_expected"] >= 10
    # each enforced action once: in the audit log and in the key manager itself
    assert figures["actions_done"] == figures["actions_expected"] >= 2
    assert figures["actions_done_twice"] == figures["actions_missing"] == 0
    assert figures["key_versions"] == figures["key_versions_expected"]
