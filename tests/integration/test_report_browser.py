"""Compliance reports from a fixture warehouse open in headless Chromium: every chart is there, the
page's script runs to the end, the console stays clean, and hostile log text stays text."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from analytics.compliance_report import FRAMEWORKS, Evidence, controls
from analytics.report_html import write_report
from analytics.warehouse import insert_findings, open_warehouse
from kmo.demo.offline_warehouse import build
from kmo.settings import Settings
from streams.policy import load_policy

pytestmark = pytest.mark.integration
HOSTILE = '<script>document.title="owned"</script><img src=x onerror=alert(1)>'
FORMULA = '=HYPERLINK("http://evil.example","click")'
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0",
]  # fmt: skip


def render(page: Path, profile: Path) -> tuple[str, list[str]]:
    """The DOM after the page's scripts ran, and what the page wrote to the console."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("Chromium is not installed: run scripts/install-system-deps.sh as root (Debian chromium)")
    run = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout, [line for line in run.stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    home = tmp_path_factory.mktemp("report-wh")
    settings = Settings.from_env({"KMO_HOME": str(home)})
    counts = build(settings.warehouse, home / "estate")
    hostile = {
        "finding_info": {"uid": "hostile", "title": HOSTILE, "types": ["policy-violation"],
                         "analytic": {"uid": "any.key_export"}, "first_seen_time_dt": "2026-11-29T00:00:00Z",
                         "last_seen_time_dt": "2026-11-29T00:00:00Z", "related_events": []},
        "severity_id": 4, "count": 1, "message": HOSTILE, "resources": [{"uid": HOSTILE}],
        "unmapped": {"recommended_action": "investigate"}, "actor": {"user": {"uid": FORMULA}},
    }  # fmt: skip
    con = open_warehouse(settings.warehouse)
    insert_findings(con, [hostile])
    con.close()
    evidence = Evidence(settings, datetime(2026, 11, 1, tzinfo=UTC), counts["newest"], load_policy())
    out = home / "reports"
    return out, [write_report(out, f, evidence, controls(evidence, f)) for f in FRAMEWORKS]


def test_the_console_check_catches_a_broken_page(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><body><script>undefinedFunction()</script></body>")
    _dom, console = render(page, tmp_path / "profile")
    assert any("Uncaught ReferenceError" in line for line in console)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_report_renders_with_its_charts_and_no_console_errors(reports, framework, tmp_path: Path) -> None:
    out, written = reports
    entry = next(w for w in written if w["framework"] == framework)
    dom, console = render(Path(entry["html"]), tmp_path / "profile")
    assert console == []
    assert 'data-ready="1"' in dom  # the page's script ran to its last line
    assert dom.count("<svg") == 5 and "Key usage per day" in dom and "Findings by severity" in dom
    assert ("not compliant" in dom) != entry["compliant"]
    assert "<script>document.title" not in dom and "<img" not in dom  # hostile markup stayed text
    csvs = sorted((out / "evidence").glob(f"{framework.lower()}-*.csv"))
    assert csvs and all(c.read_text().splitlines()[0] for c in csvs)


def test_hostile_text_arrives_as_text_in_html_and_csv(reports, tmp_path: Path) -> None:
    out, _ = reports
    dom, _console = render(out / "pci-dss.html", tmp_path / "profile")
    assert "&lt;script&gt;document.title" in dom and not re.search(r"<title>owned", dom)
    evidence = (out / "evidence" / "pci-dss-3-7-7.csv").read_text()
    assert HOSTILE.replace('"', '""') in evidence  # quoted as data; it starts with <, not a formula
    assert "'" + FORMULA.replace('"', '""') in evidence and ",=HYPERLINK" not in evidence  # a formula, made inert
