"""`kmo scheduler --config`: due jobs run once, are announced on kmo.reports.v1, and their findings
reach the findings topic; a second pass finds nothing due."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kmo.cli import main
from kmo.demo.offline_warehouse import build
from kmo.kafka import ensure_all_topics, resolve_bootstrap
from kmo.settings import Settings
from tests.conftest import kmo_env
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.integration


def test_jobs_run_are_announced_and_not_repeated(settings: Settings, tmp_path: Path, monkeypatch, capsys) -> None:
    build(settings.warehouse, tmp_path / "estate")
    for var, value in kmo_env(settings).items():
        if var.startswith("KMO_"):
            monkeypatch.setenv(var, value)
    config = tmp_path / "schedule.yaml"
    config.write_text(
        "jobs:\n"
        "  - {name: weekly-pci, task: report, every: 7d, period: 3650d, frameworks: [PCI-DSS]}\n"
        "  - {name: absences, task: absence-detection, every: 7d}\n"
        "  - {name: rotation, task: rotation-check, every: 7d}\n"
    )
    assert main(["scheduler", "--config", str(config), "--once"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(m["job"], m["outcome"]) for m in printed] == [
        ("weekly-pci", "succeeded"),
        ("absences", "succeeded"),
        ("rotation", "succeeded"),
    ]
    assert Path(printed[0]["files"][0]).exists() and printed[1]["findings"] > 0
    topics = ensure_all_topics(settings)
    announced = [json.loads(r.value) for r in read_all(resolve_bootstrap(settings), topics.reports.name)]
    assert [m["job"] for m in announced] == ["weekly-pci", "absences", "rotation"]
    findings = read_all(resolve_bootstrap(settings), topics.findings.name)
    assert len(findings) == printed[1]["findings"]
    assert main(["scheduler", "--config", str(config), "--once"]) == 0  # nothing is due again this week
    assert capsys.readouterr().out == ""
    assert len(read_all(resolve_bootstrap(settings), topics.reports.name)) == 3
