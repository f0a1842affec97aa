"""Windowed counts follow event time, whatever the order events arrive in.

A principal's events reach its window rules merged from every key partition, which the worker reads
at different event-time paces; the ten-million-event benchmark found the stream raising bursts
replay never did, made of events months apart (bench/README.md). These tests pin the fix: each
event counts into its own window while its series holds that window (its latest 128 with events),
and one later still counts alone and is reported, never into another window.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.schema import KeyRef
from streams.engine import Engine
from streams.inventory import Inventory
from streams.policy import load_policy
from streams.rules import any_error_burst, helpers
from streams.rules.base import Case, Context, LateEvents, MemoryState, step
from streams.rules.helpers import window_count
from streams.rules.testing import case_events
from tests.conftest import FIXTURES

KEY = "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-0000000000{i:02d}"


def denials(tag: str, day: int, count: int, keys: int = 6) -> list:
    """``count`` access denials by one principal on ``keys`` keys, a second apart, on 2026-11-``day``
    from 03:00:00 (one ten-minute window of the default policy)."""
    patch = {
        "eventID": f"{tag}{{i}}",
        "eventTime": f"2026-11-{day:02d}T03:00:{{s:02d}}Z",
        "errorCode": "AccessDeniedException",
        "resources": [{"type": "AWS::KMS::Key", "ARN": KEY}],
    }
    events = case_events(
        Case("denials", (step("cloudtrail/decrypt_assumed_role.json", patch, repeat=count),), True), FIXTURES
    )
    for n, event in enumerate(events):  # spread over ``keys`` keys
        assert event.key is not None
        event.key = KeyRef(event.key.provider, event.key.uri[:-2] + f"{n % keys:02d}")
    return events


def burst_uids(events: list) -> tuple[set[str], LateEvents]:
    """The error-burst findings over ``events`` in the order given, and the engine's late tally."""
    engine = Engine([any_error_burst], policy=load_policy(), inventory=Inventory())
    findings = engine.process(events)
    return {f.uid for f in findings}, engine.late


def test_events_of_two_days_interleaved_make_no_burst() -> None:
    """Six denials on one day and six the next: no ten-minute window holds ten, in any order. (The
    old count put a late event into the newest window: interleaved, that made twelve, a finding.)"""
    first, second = denials("a", 20, 6), denials("b", 21, 6)
    interleaved = [e for pair in zip(second, first, strict=True) for e in pair]  # the earlier day late
    assert burst_uids(first + second)[0] == set()
    uids, late = burst_uids(interleaved)
    assert uids == set()
    assert (late.behind, late.uncounted, late.max_seconds) == (6, 0, 86400)


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False))
def test_the_bursts_found_do_not_depend_on_arrival_order(rng) -> None:
    """A real burst (twelve denials on four keys) and a near miss (eight) a day apart, shuffled:
    the same finding, under the same uid, as in time order."""
    events = denials("a", 20, 12, keys=4) + denials("b", 21, 8, keys=4)
    expected, _ = burst_uids(events)
    assert len(expected) == 1
    shuffled = list(events)
    rng.shuffle(shuffled)
    assert burst_uids(shuffled)[0] == expected


def test_an_event_whose_window_was_let_go_counts_alone_and_is_reported(monkeypatch) -> None:
    """A series holding two windows, days 20 and 21 taken: day 19's late denials find their window
    gone (it was let go; a window older than all held ones may have been), count alone (no burst of
    them, none into a newer window) and are each tallied."""
    # days 18 and 19 fill the two windows; 21 lets 18 go, 20 (late, but after the floor) lets 19 go
    newer = denials("x", 18, 1) + denials("y", 19, 1) + denials("c", 21, 1) + denials("b", 20, 9)
    older = denials("a", 19, 12)
    monkeypatch.setattr(helpers, "WINDOWS_HELD", 2)  # window_count reads it at each call
    uids, late = burst_uids(newer + older)
    assert uids == set(), "twelve late denials counted alone, none into the newer windows"
    assert (late.behind, late.uncounted, late.max_seconds) == (21, 12, 2 * 86400)
    assert burst_uids(older + newer)[0], "in time order the twelve are a burst"


def test_a_series_keeps_only_its_latest_windows() -> None:
    """State stays bounded: a series keeps its latest windows that had events, and remembers where
    it let go (the floor), so a window that was let go is not started afresh with a partial count."""
    ctx = Context(MemoryState(), load_policy(), Inventory())
    for day in (18, 19, 20, 21):
        for event in denials(f"d{day}", day, 2):
            window_count(ctx, "errors|p", event, 600, event.key.uri if event.key else "-", held=2)
    state = ctx.state["errors|p"]
    assert [(n, len(m)) for _w, n, m in state["windows"]] == [(2, 2), (2, 2)]
    assert state["floor"] == int(denials("d19", 19, 1)[0].time.timestamp())
    late = denials("late", 19, 1)[0]
    assert window_count(ctx, "errors|p", late, 600, "k", held=2) == (1, 1)
    assert ctx.late.uncounted == 1 and len(ctx.state["errors|p"]["windows"]) == 2


def test_a_window_an_older_worker_left_in_its_table_keeps_its_count() -> None:
    """The one-window state form of the previous worker is read, so an upgrade loses no count."""
    nine, tenth = denials("a", 20, 10)[:9], denials("a", 20, 10)[9]
    ctx = Context(MemoryState(), load_policy(), Inventory())
    for event in nine:
        window_count(ctx, "errors|p", event, 600, event.key.uri if event.key else "-")
    ((start, count, members),) = ctx.state["errors|p"]["windows"]
    ctx.state["errors|p"] = {"w": start, "n": count, "m": members}  # as the old worker wrote it
    assert window_count(ctx, "errors|p", tenth, 600, "another-key") == (10, 7)


def test_kmo_detect_says_when_files_came_out_of_time_order(tmp_path: Path) -> None:
    """The newer file first: a burst, then a denial in each of 130 ten-minute windows, more than a
    series holds; then the older file's burst finds its windows let go. Its denials count alone, and
    ``kmo detect`` says so, and how to avoid it, rather than quietly finding one burst fewer."""
    record = json.loads((FIXTURES / "cloudtrail/decrypt_assumed_role.json").read_text())
    start = datetime(2026, 11, 24, 3, tzinfo=UTC)
    newer = [start + timedelta(seconds=i) for i in range(12)] + [
        start + timedelta(minutes=10 * i) for i in range(1, 131)
    ]
    older = [start - timedelta(days=14, seconds=-i) for i in range(12)]
    for name, times in (("a-newer.json", newer), ("b-older.json", older)):
        records = [
            record
            | {
                "eventID": f"{name}-{i}",
                "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "errorCode": "AccessDeniedException",
                "resources": [{"type": "AWS::KMS::Key", "ARN": KEY.format(i=i % 4)}],
            }
            for i, when in enumerate(times)
        ]
        (tmp_path / name).write_text(json.dumps({"Records": records}))
    run = subprocess.run(
        [sys.executable, "-m", "kmo.cli", "detect", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    rules = [json.loads(line)["finding_info"]["analytic"]["uid"] for line in run.stdout.splitlines()]
    assert rules.count("any.error_burst") == 1, "the newer file's burst; none of the older's, none made of both"
    assert "kmo: 12 events came after a window rule had let their window go" in run.stderr
    assert "pass the files in time order" in run.stderr


def test_the_bench_reads_back_what_the_worker_states() -> None:
    """The bench's late-events figure is parsed from the worker's log: a changed statement must not
    quietly read as "none reported"."""
    from streams.worker import LATE_EVENTS_LINE, late_events_line

    line = late_events_line("principal", LateEvents(behind=204, uncounted=185, max_seconds=3403800), missed=True)
    match = LATE_EVENTS_LINE.search(f"[2026-12-05 12:55:32,915] [3729] [WARNING] {line}")
    assert match is not None and match.groups() == ("principal", "185", "204", "3403800")
