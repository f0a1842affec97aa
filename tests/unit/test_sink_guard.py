"""The sink's guard (analytics.sink_guard): when records wait and the group's commits stand still,
it asks for a new consumer once, and ends the process (75) if that does not help or if the sink's
loop never comes back to take the request; a deliberate hold and an idle topic are not stalls."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import pytest

from analytics.sink_guard import STALLED_EXIT, SinkStallGuard


class Feed:
    """The offsets the guard reads, and the time, both set by the test."""

    def __init__(self) -> None:
        self.now = 0.0
        self.offsets: dict[Hashable, tuple[int, int]] = {"events-0": (10, 10)}
        self.fail = False

    def read(self) -> Mapping[Hashable, tuple[int, int]]:
        if self.fail:
            raise ConnectionError("broker away")
        return dict(self.offsets)


@pytest.fixture
def feed() -> Feed:
    return Feed()


@pytest.fixture
def exits() -> list[int]:
    """The exit codes the guard asked for (recorded, not done)."""
    return []


@pytest.fixture
def guard(feed: Feed, exits: list[int]) -> SinkStallGuard:
    return SinkStallGuard(feed.read, 10.0, clock=lambda: feed.now, exit_process=exits.append)


def tick(guard: SinkStallGuard, feed: Feed, seconds: float, step: float = 2.5) -> None:
    end = feed.now + seconds
    while feed.now < end:
        feed.now += step
        guard.check()


def test_records_waiting_and_no_commit_ask_for_a_new_consumer_once(
    feed: Feed, guard: SinkStallGuard, exits: list[int]
) -> None:
    feed.offsets = {"events-0": (10, 50)}
    tick(guard, feed, 7.5)
    assert not guard.take_stall(), "not yet: the commit has stood still for less than stall_seconds"
    tick(guard, feed, 5)
    assert guard.take_stall() and not guard.take_stall()
    assert exits == []


def test_an_idle_topic_or_moving_commits_are_no_stall(feed: Feed, guard: SinkStallGuard, exits: list[int]) -> None:
    tick(guard, feed, 60)  # nothing waiting
    for committed in range(10, 40, 2):  # records waiting, but the sink keeps committing
        feed.offsets = {"events-0": (committed, 50)}
        tick(guard, feed, 2.5)
    assert not guard.take_stall() and exits == []


def test_a_hold_on_purpose_and_an_unreachable_broker_are_no_stall(
    feed: Feed, guard: SinkStallGuard, exits: list[int]
) -> None:
    feed.offsets = {"events-0": (10, 50)}
    with guard.hold():  # a warehouse that cannot be written: the batch is held deliberately
        tick(guard, feed, 60)
    feed.fail = True
    tick(guard, feed, 60)
    assert not guard.take_stall() and exits == []


def test_a_stall_again_soon_after_a_new_consumer_ends_the_process(
    feed: Feed, guard: SinkStallGuard, exits: list[int]
) -> None:
    feed.offsets = {"events-0": (10, 50)}
    tick(guard, feed, 12.5)
    assert guard.take_stall()
    tick(guard, feed, 12.5)
    assert exits == [STALLED_EXIT]


def test_a_loop_that_never_takes_the_request_ends_the_process(
    feed: Feed, guard: SinkStallGuard, exits: list[int]
) -> None:
    feed.offsets = {"events-0": (10, 50)}
    tick(guard, feed, 12.5)  # flagged, and the sink's loop is stuck inside its client
    assert exits == []
    tick(guard, feed, 10)
    assert exits == [STALLED_EXIT]


def test_a_stall_long_after_the_last_remedy_is_remedied_again(
    feed: Feed, guard: SinkStallGuard, exits: list[int]
) -> None:
    feed.offsets = {"events-0": (10, 50)}
    tick(guard, feed, 12.5)
    assert guard.take_stall()
    feed.offsets = {"events-0": (50, 50)}
    tick(guard, feed, 60)  # the new consumer caught up; much later, another stall
    feed.offsets = {"events-0": (50, 90)}
    tick(guard, feed, 12.5)
    assert guard.take_stall() and exits == []
