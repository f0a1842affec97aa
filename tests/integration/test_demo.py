"""`kmo demo` end to end on the embedded defaults (its own broker), then `kmo query` on what it left."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from analytics.query import run_query
from kmo.settings import Settings
from tests.integration.test_report_browser import render

pytestmark = pytest.mark.integration
KMO = [sys.executable, "-m", "kmo.cli"]


def test_demo_runs_end_to_end_and_leaves_a_queryable_warehouse(tmp_path: Path) -> None:
    env = {"KMO_HOME": str(tmp_path / ".kmo"), "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [*KMO, "demo", "--days", "2"], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "15 seeded incidents" in run.stderr and "INC-01 decrypt_burst_new_principal" in run.stdout
    # the stream worker and kmo detect agree on the demo's events
    assert "0 only in the stream, 0 only in replay" in run.stderr, run.stderr[-2000:]
    assert "with another count" not in run.stderr, run.stderr[-2000:]
    assert "MISSED" not in run.stdout
    # the learned model, trained on what landed, flags the same hours live in the worker as in batch
    live = re.search(
        r"live in the worker: (\d+) anomalous hours; (\d+) identical to batch scoring, 0 only live, 0 only in batch",
        run.stderr,
    )
    assert live and live.group(1) == live.group(2), run.stderr[-2000:]
    proposed = re.search(r"kmo responder \(propose mode\) over those findings: (\d+) pending actions", run.stderr)
    assert proposed and int(proposed.group(1)) > 0, run.stderr[-2000:]
    incidents = json.loads((tmp_path / ".kmo/demo/incidents.json").read_text())
    inventory = json.loads((tmp_path / ".kmo/demo/inventory.json").read_text())
    assert len(incidents) == 15 and len(inventory) == 42
    assert {k["keyType"] for k in inventory} == {"master", "data", "signing", "tls", "api", "session"}

    q = subprocess.run(
        [*KMO, "query", "--format", "json", "SELECT count(*) AS n, count(DISTINCT uid) AS u FROM events"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert q.returncode == 0, q.stderr
    row = json.loads(q.stdout)
    assert row["n"] == row["u"] > 1000
    # every seeded incident event is in the warehouse (ground truth lines up with what landed)
    uids = [u for inc in incidents for u in inc["event_uids"]]
    settings = Settings.from_env({"KMO_HOME": str(tmp_path / ".kmo")})
    found = run_query(settings, "SELECT count(*) AS n FROM events WHERE list_contains(?, uid)", [uids])
    assert found.to_pylist()[0]["n"] == len(uids) > 400
    # it ends with compliance reports over what landed, each with its charts and evidence
    for framework in ("nist", "fips-140-3", "pci-dss", "hipaa", "soc2"):
        page = (tmp_path / ".kmo/reports/demo" / f"{framework}.html").read_text()
        assert page.count("<svg") == 5 and "Controls" in page
        assert json.loads((tmp_path / ".kmo/reports/demo" / f"{framework}.json").read_text())["complianceStatus"]
    assert "pci-dss.html" in run.stdout
    dom, console = render(tmp_path / ".kmo/reports/demo/pci-dss.html", tmp_path / "chromium-profile")
    assert console == [] and 'data-ready="1"' in dom and dom.count("<svg") == 5  # it opens in a browser
    findings = run_query(settings, "SELECT count(*) AS n FROM findings").to_pylist()[0]["n"]
    assert findings > 20  # the stream's findings landed too
    status = json.loads(subprocess.run([*KMO, "broker", "status"], env=env, capture_output=True, text=True).stdout)
    assert not status["running"], "the demo stops the broker it started"


def test_demo_refuses_a_home_that_holds_other_data(tmp_path: Path) -> None:
    home = tmp_path / "real"
    home.mkdir()
    (home / "warehouse.duckdb").write_bytes(b"precious")
    run = subprocess.run(
        [*KMO, "demo", "--days", "1"],
        env={"KMO_HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and "not a previous demo" in run.stderr
    assert (home / "warehouse.duckdb").read_bytes() == b"precious"
