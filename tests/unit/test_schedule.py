"""Scheduled jobs: fixed slots, catch-up after downtime, state saved per slot, failures retried;
and what the absence-detection and report tasks produce over the fixture warehouse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analytics.schedule import MAX_CATCHUP, Job, JobRunner, ScheduleError, load_schedule
from analytics.scheduled_tasks import absence_findings, report_task
from kmo.demo.offline_warehouse import build
from kmo.settings import Settings
from streams.policy import load_policy

NOW = datetime(2026, 12, 4, 10, 30, tzinfo=UTC)


def test_slots_are_fixed_and_missed_ones_are_caught_up() -> None:
    daily = Job("daily", "report", timedelta(days=1))
    assert daily.slots(None, NOW) == [datetime(2026, 12, 4, tzinfo=UTC)]  # first run: the latest slot only
    three_days_down = daily.slots(datetime(2026, 12, 1, tzinfo=UTC), NOW)
    assert three_days_down == [datetime(2026, 12, d, tzinfo=UTC) for d in (2, 3, 4)]  # one report per slot
    assert len(daily.slots(datetime(2025, 1, 1, tzinfo=UTC), NOW)) == MAX_CATCHUP
    check = Job("rot", "rotation-check", timedelta(hours=1))
    assert check.slots(datetime(2026, 12, 1, tzinfo=UTC), NOW) == [datetime(2026, 12, 4, 10, tzinfo=UTC)]  # once
    assert daily.slots(datetime(2026, 12, 4, tzinfo=UTC), NOW) == []  # nothing new


def test_the_runner_saves_each_slot_and_retries_a_failure(tmp_path: Path) -> None:
    calls: list[tuple[str, datetime]] = []
    fail = {"on": datetime(2026, 12, 3, tzinfo=UTC)}

    def report(job: Job, slot: datetime) -> dict:
        calls.append((job.name, slot))
        if slot == fail["on"]:
            raise RuntimeError("warehouse busy")
        return {"files": []}

    announced: list[dict] = []
    jobs = [Job("daily", "report", timedelta(days=1))]
    runner = JobRunner(tmp_path, jobs, {"report": report}, announced.append)
    runner.state_path.parent.mkdir(parents=True)
    runner.state_path.write_text('{"daily": "2026-12-01T00:00:00Z"}')
    runner.run_due(NOW)
    assert [m["outcome"] for m in announced] == ["succeeded", "failed"]  # stops at the failure
    assert "warehouse busy" in announced[1]["error"]
    fail["on"] = None
    runner.run_due(NOW)  # resumes from the failed slot
    assert [s.day for _n, s in calls] == [2, 3, 3, 4]
    assert runner.run_due(NOW) == []  # everything done


def test_schedules_are_validated(tmp_path: Path) -> None:
    path = tmp_path / "schedule.yaml"
    for text, message in [
        ("jobs: [{name: a, task: nap, every: 1d}]", "task must be one of"),
        ("jobs: [{name: a, task: report, every: 30s}]", "every"),
        ("jobs: [{name: a, task: report, every: 1d, frameworks: [ISO]}]", "frameworks must be among"),
        ("jobs: [{name: a, task: report, every: 1d, out: ../../etc}]", "under KMO_HOME"),
        ("jobs: [{name: a, task: report, every: 1d, colour: red}]", "unknown field"),
        ("jobs: [{name: a, task: report, every: 1d}, {name: a, task: report, every: 2d}]", "unique"),
    ]:
        path.write_text(text)
        with pytest.raises(ScheduleError, match=message):
            load_schedule(path)
    path.write_text("jobs: [{name: weekly-pci, task: report, every: 7d, period: 30d, frameworks: [PCI-DSS]}]")
    assert load_schedule(path) == [Job("weekly-pci", "report", timedelta(days=7), timedelta(days=30), ("PCI-DSS",))]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("sched-wh")
    settings = Settings.from_env({"KMO_HOME": str(home)})
    return settings, build(settings.warehouse, home / "estate")


def test_absence_detection_uses_the_stream_rules_over_warehouse_state(warehouse) -> None:
    settings, counts = warehouse
    now = counts["newest"]
    found = absence_findings(settings, load_policy(), now)
    rules = {f.rule_id for f in found}
    assert "any.rotation_overdue" in rules and "coverage.source_silent" not in rules
    later = absence_findings(settings, load_policy(), now + timedelta(days=2))
    silent = [f for f in later if f.rule_id == "coverage.source_silent"]
    assert {f.details["source"] for f in silent} >= {"aws.cloudtrail", "vault.audit"}
    again = absence_findings(settings, load_policy(), now + timedelta(days=2))
    assert {f.uid for f in again} == {f.uid for f in later}  # the same condition, the same uids


def test_the_report_task_writes_under_the_job(warehouse) -> None:
    settings, counts = warehouse
    job = Job("weekly", "report", timedelta(days=7), timedelta(days=30), ("PCI-DSS", "SOC2"))
    result = report_task(settings, load_policy())(job, counts["newest"] + timedelta(hours=1))
    assert set(result["compliant"]) == {"PCI-DSS", "SOC2"}
    assert all(Path(f).exists() for f in result["files"]) and "/reports/weekly/" in result["directory"]
