"""The demo's "has the worker caught up" check must not pass while the principal stream is behind."""

from __future__ import annotations

from kafka import TopicPartition

from kmo.demo.stream_check import _caught_up

EVENTS, FORWARDED = "kmo.events.v1", "kmo.events.by-principal.v1"
TPS = [TopicPartition(EVENTS, 0), TopicPartition(FORWARDED, 0)]


class ForwardingInFlight:
    """The moment the CI flake caught: every event committed and forwarded, but the forwarded copies
    become visible only after the first end-offset read, and the principal stream has processed none."""

    def __init__(self) -> None:
        self.reads = 0

    def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.reads += 1
        forwarded = 0 if self.reads == 1 else 100
        return {TopicPartition(EVENTS, 0): 100, TopicPartition(FORWARDED, 0): forwarded}

    def committed(self, tp: TopicPartition) -> int:
        return 100 if tp.topic == EVENTS else 0


def test_not_caught_up_while_forwarded_events_are_unprocessed() -> None:
    consumer = ForwardingInFlight()
    assert _caught_up(consumer, TPS, EVENTS) is False  # nothing forwarded yet in its one read
    assert _caught_up(consumer, TPS, EVENTS) is False  # forwarded, but the principal stream committed none


def test_caught_up_when_both_streams_committed_everything() -> None:
    class Done(ForwardingInFlight):
        def committed(self, tp: TopicPartition) -> int:
            return 100

    consumer = Done()
    consumer.reads = 1
    assert _caught_up(consumer, TPS, EVENTS) is True
