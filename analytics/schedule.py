"""Scheduled jobs for ``kmo scheduler --config FILE``: compliance reports, rotation checks and absence
detections (orphaned keys, rotation overdue, silent sources), each announced on ``kmo.reports.v1``.

A job runs at fixed slots (multiples of its interval since the epoch, in UTC), so "the weekly
report" means the same instant on every machine. The last slot each job completed is kept in
``$KMO_HOME/state/schedule.json`` and saved after every slot, so after downtime the missed slots are
caught up: a report job writes one report per missed slot (each over the period ending at its slot,
at most ``MAX_CATCHUP`` of them, oldest first); a check needs only its latest slot, since one run
covers everything missed. Example config::

    jobs:
      - {name: monthly-pci, task: report, every: 7d, period: 30d, frameworks: [PCI-DSS, NIST]}
      - {name: rotation, task: rotation-check, every: 1h}
      - {name: absences, task: absence-detection, every: 6h}
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from actions.private_files import write_private
from actions.request import RequestError, parse_duration
from ingest.schema import format_timestamp, parse_timestamp

TASKS = ("report", "rotation-check", "absence-detection")
MAX_CATCHUP = 12


class ScheduleError(ValueError):
    """A schedule file that does not say what it means; the message names the job and field."""


@dataclass(frozen=True)
class Job:
    name: str
    task: str
    every: timedelta
    period: timedelta = timedelta(days=30)
    frameworks: tuple[str, ...] = ()
    out: str = "reports"

    def slots(self, after: datetime | None, now: datetime) -> list[datetime]:
        """The slots due at ``now`` since ``after`` (the last one done); only the latest on a first run."""
        step = int(self.every.total_seconds())
        latest = datetime.fromtimestamp(int(now.timestamp()) // step * step, tz=UTC)
        if after is None:
            return [latest]
        due, slot = [], latest
        while slot > after and len(due) < MAX_CATCHUP:
            due.append(slot)
            slot -= self.every
        return sorted(due) if self.task == "report" else due[:1]


def load_schedule(path: str | Path) -> list[Job]:
    from analytics.compliance_report import FRAMEWORKS

    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ScheduleError(f"cannot read schedule {path}: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), list) or set(doc) - {"jobs"}:
        raise ScheduleError("a schedule is a mapping with one key, jobs: a list of jobs")
    jobs, names = [], set()
    for i, raw in enumerate(doc["jobs"]):
        where = f"job {i}"
        if not isinstance(raw, dict):
            raise ScheduleError(f"{where}: a mapping of name, task, every, ...")
        unknown = set(raw) - {"name", "task", "every", "period", "frameworks", "out"}
        if unknown:
            raise ScheduleError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        name = raw.get("name")
        if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum() or name in names:
            raise ScheduleError(f"{where}: name must be a unique word (letters, digits, - and _)")
        names.add(name)
        if raw.get("task") not in TASKS:
            raise ScheduleError(f"{name}: task must be one of {', '.join(TASKS)}")
        frameworks = tuple(raw.get("frameworks") or (FRAMEWORKS if raw["task"] == "report" else ()))
        if set(frameworks) - set(FRAMEWORKS):
            raise ScheduleError(f"{name}: frameworks must be among {', '.join(FRAMEWORKS)}")
        try:
            every = parse_duration(str(raw.get("every", "")), f"{name}.every")
            period = parse_duration(str(raw.get("period", "30d")), f"{name}.period")
        except RequestError as exc:
            raise ScheduleError("; ".join(exc.problems)) from None
        if every < timedelta(minutes=1):
            raise ScheduleError(f"{name}: every must be at least a minute")
        out = str(raw.get("out", "reports"))
        if out.startswith("/") or ".." in Path(out).parts:
            raise ScheduleError(f"{name}: out is a directory under KMO_HOME")
        jobs.append(Job(name, raw["task"], every, period, frameworks, out))
    return jobs


@dataclass
class JobRunner:
    """Runs what is due; ``tasks`` maps a task name to ``(job, slot) -> announcement``."""

    home: Path
    jobs: list[Job]
    tasks: dict[str, Callable[[Job, datetime], dict[str, Any]]]
    announce: Callable[[dict[str, Any]], None]
    state_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.state_path = self.home / "state" / "schedule.json"

    def _state(self) -> dict[str, str]:
        return json.loads(self.state_path.read_text()) if self.state_path.exists() else {}

    def run_due(self, now: datetime | None = None) -> list[dict[str, Any]]:
        now = now or datetime.now(UTC)
        done = []
        for job in self.jobs:
            last = self._state().get(job.name)
            for slot in job.slots(parse_timestamp(last) if last else None, now):
                try:
                    result = self.tasks[job.task](job, slot)
                    outcome = "succeeded"
                except Exception as exc:  # one failing job must not stop the others; it is announced
                    result, outcome = {"error": f"{type(exc).__name__}: {exc}"[:500]}, "failed"
                message = {"job": job.name, "task": job.task, "slot": format_timestamp(slot), "outcome": outcome,
                           "ranAt": format_timestamp(datetime.now(UTC)), **result}  # fmt: skip
                self.announce(message)
                done.append(message)
                if outcome == "failed":
                    break  # retried from this slot on the next pass
                state = self._state() | {job.name: format_timestamp(slot)}
                self.state_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                write_private(self.state_path, json.dumps(state, indent=2).encode())
        return done
