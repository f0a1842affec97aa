"""The worker's self-check (streams.stall_watch): which owned partitions have records waiting and
have made no progress for the stall period."""

from __future__ import annotations

from streams.stall_watch import StallWatch


def test_stall_watch_names_partitions_with_records_waiting_and_no_progress() -> None:
    watch = StallWatch(stall_seconds=10)
    assert watch.observe(0, {"a": (5, 9), "b": (3, 3)}) == []
    assert watch.observe(6, {"a": (5, 9), "b": (3, 3)}) == []
    assert watch.observe(11, {"a": (5, 9), "b": (3, 3)}) == ["a"]  # b is idle, not stalled: nothing waits
    assert watch.observe(12, {"a": (6, 9), "b": (3, 3)}) == []  # a moved: its clock starts again
    assert watch.observe(21, {"a": (6, 9)}) == []
    assert watch.observe(22, {"a": (6, 9)}) == ["a"]
    assert watch.observe(23, {"b": (3, 4)}) == []  # a revoked and forgotten; b's clock starts now
    watch.reset()
    assert watch.observe(40, {"b": (3, 4)}) == [] and watch.observe(50, {"b": (3, 4)}) == ["b"]


def test_recovery_that_stops_applying_changes_is_stalled_even_at_zero_left() -> None:
    # the worker feeds (-changes left, 1): "waiting" for as long as recovery lasts, progress when
    # the count falls; Faust counts only partitions it has heard from, so a stuck one may show 0 left
    watch = StallWatch(stall_seconds=10)
    assert watch.observe(0, {"recovery": (-500, 1)}) == []
    assert watch.observe(8, {"recovery": (-20, 1)}) == []  # applying changes
    assert watch.observe(17, {"recovery": (-20, 1)}) == []
    assert watch.observe(18, {"recovery": (-20, 1)}) == ["recovery"]
    watch.reset()
    assert watch.observe(30, {"recovery": (0, 1)}) == [] and watch.observe(41, {"recovery": (0, 1)}) == ["recovery"]
