"""The demo's "has the worker caught up" check must not pass while the principal stream is behind."""

from __future__ import annotations

from kafka import TopicPartition

from kmo.demo.stream_check import caught_up

EVENTS, FORWARDED = "kmo.events.v2", "kmo.events.by-principal.v1"
TPS = [TopicPartition(EVENTS, 0), TopicPartition(FORWARDED, 0)]


class Topics:
    """End offsets and commits as a worker's group would show them. ``forwarded_end`` is what the
    principal topic holds when its ends are read; forwarded batches are fewer than the events."""

    def __init__(self, *, events_committed: int, forwarded_end: int, forwarded_committed: int) -> None:
        self.events_committed = events_committed
        self.forwarded_end = forwarded_end
        self.forwarded_committed = forwarded_committed
        self.reads: list[str] = []

    def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.reads += [tp.topic for tp in tps]
        return {tp: 100 if tp.topic == EVENTS else self.forwarded_end for tp in tps}

    def committed(self, tp: TopicPartition) -> int:
        return self.events_committed if tp.topic == EVENTS else self.forwarded_committed


def test_not_caught_up_while_the_events_are_not_all_committed() -> None:
    consumer = Topics(events_committed=99, forwarded_end=3, forwarded_committed=3)
    assert caught_up(consumer, TPS, EVENTS) is False
    assert consumer.reads == [EVENTS]  # the forwarded topic's ends mean nothing before that commit


def test_not_caught_up_while_forwarded_batches_are_unprocessed() -> None:
    consumer = Topics(events_committed=100, forwarded_end=4, forwarded_committed=3)
    assert caught_up(consumer, TPS, EVENTS) is False


def test_caught_up_when_both_streams_committed_everything() -> None:
    consumer = Topics(events_committed=100, forwarded_end=4, forwarded_committed=4)
    assert caught_up(consumer, TPS, EVENTS) is True
    assert consumer.reads == [EVENTS, FORWARDED]  # events first, then the forwarded topic


def _finding(rule_id: str, uid: str, count: int):
    from datetime import UTC, datetime

    from streams.findings import Action, Category, Finding, Severity

    when = datetime(2026, 11, 1, tzinfo=UTC)
    return Finding(
        uid=uid, rule_id=rule_id, title="t", category=Category.ANOMALOUS_USAGE, severity=Severity.HIGH,
        action=Action.INVESTIGATE, analytic_type=3, message="m", keys=["k"], actor="p", first_seen=when,
        last_seen=when, evidence=[f"e{i}" for i in range(count)], count=count,
    )  # fmt: skip


def test_a_principal_window_count_that_follows_the_streams_order_is_told_apart() -> None:
    from kmo.demo.stream_check import compare

    replayed = [
        _finding("any.error_burst", "burst", 16),  # principal-scoped window rule
        _finding("any.usage_spike", "spike", 320),  # key-scoped
        _finding("any.key_disabled", "same", 1),
        _finding("any.key_disabled", "missing", 1),
    ]
    stream = {f.uid: f.to_ocsf() for f in replayed if f.uid != "missing"}
    stream["burst"]["count"], stream["spike"]["count"] = 21, 321
    extra = _finding("any.key_disabled", "extra", 1)
    stream["extra"] = extra.to_ocsf()
    match = compare(stream, replayed)
    assert match.same == 1
    assert (match.order_dependent, match.count_differs) == (["burst"], ["spike"])
    assert (match.only_stream, match.only_replay) == (["extra"], ["missing"])
    assert not match.exact
    del stream["extra"], stream["spike"]
    replayed = [f for f in replayed if f.uid not in ("missing", "spike")]
    assert compare(stream, replayed).exact, "a principal window's count alone is no error"
