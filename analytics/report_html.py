"""Compliance reports on disk: JSON (the specification's complianceStatus with the controls), a
self-contained HTML page with its charts, and one CSV of evidence rows per control.

The HTML needs nothing from the network: styles inline, charts drawn as inline SVG here, and a few
lines of script that only fold the evidence tables (and mark the page ready, which the browser test
checks). Every value from the warehouse is HTML-escaped, so a log field holding markup or script
reaches the page as text.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analytics.compliance_report import ControlResult, Evidence, compliance_status, evidence_csv
from ingest.schema import format_timestamp

_STATUS_COLOUR = {"pass": "#1a7f37", "fail": "#cf222e", "not-evaluable": "#9a6700"}
_SEVERITY_ORDER = ["critical", "high", "medium", "low", "informational"]
_AGE_BUCKETS = [(30, "< 30 d"), (90, "30–90 d"), (180, "90–180 d"), (365, "180–365 d"), (10**6, "> 1 y")]


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def bar_chart(title: str, labels: list[str], values: list[int], *, colour: str = "#0969da") -> str:
    """A labelled horizontal bar chart as inline SVG."""
    width, row, left = 520, 22, 150
    top = max(values, default=0) or 1
    height = row * max(len(labels), 1) + 30
    bars = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 24 + i * row
        w = int((width - left - 60) * value / top)
        bars.append(
            f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{_e(label)}</text>'
            f'<rect x="{left}" y="{y}" width="{w}" height="{row - 6}" fill="{colour}">'
            f"<title>{_e(label)}: {value}</title></rect>"
            f'<text x="{left + w + 4}" y="{y + 13}">{value}</text>'
        )
    if not labels:
        bars.append(f'<text x="{left}" y="40">no data in the period</text>')
    return (
        f'<figure class="chart"><svg role="img" aria-label="{_e(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}"><text x="0" y="14" class="title">{_e(title)}</text>'
        f"{''.join(bars)}</svg></figure>"
    )


def line_chart(title: str, points: list[tuple[str, int]]) -> str:
    """A line chart (x: day labels, y: counts) as inline SVG."""
    width, height, left, bottom = 520, 200, 50, 30
    top = max((v for _, v in points), default=0) or 1
    n = max(len(points) - 1, 1)
    coords = [
        (left + (width - left - 10) * i / n, height - bottom - (height - bottom - 24) * v / top)
        for i, (_, v) in enumerate(points)
    ]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(coords))
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#0969da"><title>{_e(d)}: {v}</title></circle>'
        for (x, y), (d, v) in zip(coords, points, strict=True)
    )
    ticks = ""
    if points:
        ticks = (
            f'<text x="{left}" y="{height - 8}">{_e(points[0][0])}</text>'
            f'<text x="{width - 10}" y="{height - 8}" text-anchor="end">{_e(points[-1][0])}</text>'
            f'<text x="{left - 6}" y="30" text-anchor="end">{top}</text>'
        )
    body = (
        f'<path d="{path}" fill="none" stroke="#0969da" stroke-width="2"/>{dots}'
        if points
        else (f'<text x="{left}" y="60">no data in the period</text>')
    )
    return (
        f'<figure class="chart"><svg role="img" aria-label="{_e(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}"><text x="0" y="14" class="title">{_e(title)}</text>'
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#8c959f"/>'
        f"{ticks}{body}</svg></figure>"
    )


def charts(ev: Evidence) -> list[str]:
    """The four charts: usage over time, keys by age and by state, rotations, findings by severity."""
    per_day: Counter[str] = Counter()
    rotations: Counter[str] = Counter()
    for row in ev.usage:
        per_day[str(row["day"])] += row["usage_events"]
        rotations[str(row["day"])] += row["rotations"]
    days = sorted(per_day)
    ages: Counter[str] = Counter()
    for key in ev.inventory:
        if key.get("current_since") is not None:
            age = (ev.end - key["current_since"]).days
            ages[next(label for limit, label in _AGE_BUCKETS if age < limit)] += 1
    states = Counter(str(k.get("status") or "unknown (from logs)") for k in ev.inventory)
    severities = Counter(str(f["severity"]) for f in ev.findings)
    severity_labels = [s for s in _SEVERITY_ORDER if s in severities] + sorted(set(severities) - set(_SEVERITY_ORDER))
    age_labels = [label for _, label in _AGE_BUCKETS if label in ages]
    return [
        line_chart("Key usage per day (all sources)", [(d, per_day[d]) for d in days]),
        bar_chart("Keys by age of the current version", age_labels, [ages[a] for a in age_labels], colour="#8250df"),
        bar_chart("Keys by state", sorted(states), [states[s] for s in sorted(states)], colour="#1f883d"),
        bar_chart("Rotations per day", [d for d in days if rotations[d]], [rotations[d] for d in days if rotations[d]]),
        bar_chart("Findings by severity", severity_labels, [severities[s] for s in severity_labels], colour="#cf222e"),
    ]


_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1f2328}
h1{font-size:1.5rem;margin-bottom:.2rem} .meta{color:#59636e}
.verdict{display:inline-block;padding:.2rem .6rem;border-radius:4px;color:#fff;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:1rem} .chart{margin:0;border:1px solid #d1d9e0;border-radius:6px;padding:.5rem}
svg text{font-size:11px;fill:#1f2328} svg .title{font-size:13px;font-weight:600}
table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{border-bottom:1px solid #d1d9e0;padding:.35rem;text-align:left;vertical-align:top}
.status{font-weight:600}
code{font-size:12px;background:#f6f8fa;padding:.1rem .3rem;border-radius:3px;word-break:break-all}
details summary{cursor:pointer;color:#0969da}
"""
_SCRIPT = """
document.querySelectorAll('details.evidence').forEach(function (d) {
  d.addEventListener('toggle', function () { d.dataset.seen = '1'; });
});
document.body.dataset.ready = '1';
"""


def render_html(framework: str, ev: Evidence, results: list[ControlResult], generated: datetime) -> str:
    status = compliance_status(framework, results)
    verdict, colour = ("compliant", "#1a7f37") if status["compliant"] else ("not compliant", "#cf222e")
    rows = []
    for r in results:
        sample = r.rows[:20]
        columns = sorted({c for row in sample for c in row})
        table = "".join("<tr>" + "".join(f"<td>{_e(row.get(c))}</td>" for c in columns) + "</tr>" for row in sample)
        more = f"<p>{len(r.rows) - len(sample)} more in the CSV.</p>" if len(r.rows) > len(sample) else ""
        detail = (
            f'<details class="evidence"><summary>{len(r.rows)} evidence row(s)</summary><table><tr>'
            + "".join(f"<th>{_e(c)}</th>" for c in columns)
            + f"</tr>{table}</table>{more}</details>"
            if r.rows
            else "no evidence rows"
        )
        rows.append(
            f"<tr><td>{_e(r.control)}</td><td>{_e(r.title)}</td>"
            f'<td class="status" style="color:{_STATUS_COLOUR[r.status]}">{_e(r.status)}</td>'
            f"<td>{_e(r.summary)}<br><code>{_e(r.evidence)}</code><br>"
            f'<a href="evidence/{_e(r.slug)}.csv">evidence/{_e(r.slug)}.csv</a><br>{detail}</td></tr>'
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>kmo {_e(framework)} report {_e(ev.s)} – {_e(ev.e)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_e(framework)}: key management compliance</h1>"
        f'<p class="meta">Period {_e(ev.s)} to {_e(ev.e)} · generated {_e(format_timestamp(generated))} by kmo '
        f"from the audit warehouse · inventory basis: {_e(', '.join(sorted(ev.basis)) or 'nothing recorded')}</p>"
        f'<p><span class="verdict" style="background:{colour}">{verdict}</span> '
        f"{sum(r.status == 'pass' for r in results)} of {len(results)} controls pass</p>"
        f'<section class="charts">{"".join(charts(ev))}</section>'
        "<h2>Controls</h2><table><tr><th>Control</th><th>Requirement</th><th>Status</th><th>Evidence</th></tr>"
        f"{''.join(rows)}</table>"
        '<p class="meta">Each evidence command reruns the query behind a result: '
        "<code>kmo query --saved NAME --param k=v</code>.</p>"
        f"<script>{_SCRIPT}</script></body></html>"
    )


def write_report(directory: Path, framework: str, ev: Evidence, results: list[ControlResult]) -> dict[str, Any]:
    """Write ``<framework>.json``, ``<framework>.html`` and ``evidence/*.csv`` under ``directory``."""
    generated = datetime.now(UTC)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "evidence").mkdir(exist_ok=True)
    for r in results:
        (directory / "evidence" / f"{r.slug}.csv").write_text(evidence_csv(r.rows))
    status = compliance_status(framework, results)
    doc = {
        "complianceStatus": status,
        "period": {"start": ev.s, "end": ev.e},
        "generatedAt": format_timestamp(generated),
        "inventoryBasis": sorted(ev.basis),
    }
    stem = framework.lower()
    (directory / f"{stem}.json").write_text(json.dumps(doc, indent=2, default=str))
    (directory / f"{stem}.html").write_text(render_html(framework, ev, results, generated))
    return {
        "framework": framework,
        "compliant": status["compliant"],
        "json": str(directory / f"{stem}.json"),
        "html": str(directory / f"{stem}.html"),
    }
