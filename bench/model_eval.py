"""Measure the learned anomaly model against the labelled demo incidents, beside the rules.

    python bench/model_eval.py [--days 21] [--seed 7]

Builds the demo estate without a broker (kmo.demo.offline_warehouse), runs the rules (``kmo detect``'s
engine) and trains each candidate model on the same warehouse, unsupervised (labels are used only to
score). A finding is a true positive when one of its evidence events belongs to a seeded incident;
recall is the share of incidents with at least one such finding. Writes bench/results/model_eval.json
and prints a table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from analytics import anomaly_model as am
from analytics.query import run_query
from kmo.demo.offline_warehouse import build
from kmo.settings import Settings
from streams.findings import Finding
from streams.score import score

# the seeded incidents that are unusual *use* of keys (what a usage model can see); the others are
# single lifecycle or policy events (a key made public, a log device turned off), the rules' ground
USAGE_KINDS = frozenset(
    {
        "decrypt_burst_new_principal",
        "use_of_disabled_key",
        "cross_account_use",
        "access_denied_probe",
        "azure_mass_secret_read_and_purge",
        "luna_failed_logins_then_destroy",
        "s3_ransomware_fresh_key",
    }
)


def _measure(name: str, findings: list[Finding], incidents: list[dict], events: int) -> dict:
    with_evidence = [f for f in findings if f.evidence]
    s = score(findings, incidents, events)
    true = len(with_evidence) - len(s.false_positives)
    return {
        "detector": name,
        "findings": len(with_evidence),
        "true_positives": true,
        "precision": round(true / len(with_evidence), 3) if with_evidence else None,
        "incidents_caught": len(s.caught),
        "incidents": s.incidents,
        "recall": round(len(s.caught) / s.incidents, 3) if s.incidents else None,
        "caught": sorted(s.caught),
        "recall_usage_incidents": round(
            sum(1 for i in incidents if i["kind"] in USAGE_KINDS and i["id"] in s.caught)
            / max(1, sum(1 for i in incidents if i["kind"] in USAGE_KINDS)),
            3,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        settings = Settings.from_env({"KMO_HOME": str(home)})
        t = time.monotonic()
        counts = build(settings.warehouse, home / "estate", seed=args.seed, days=args.days)
        built = time.monotonic() - t
        incidents = json.loads((home / "estate" / "incidents.json").read_text())
        stored = run_query(settings, "SELECT CAST(doc AS VARCHAR) AS doc FROM findings").to_pylist()
        rules = [Finding.from_ocsf(json.loads(r["doc"])) for r in stored]
        start = counts["newest"] - timedelta(days=args.days + 3)
        rows = am.features_from_warehouse(settings, start, counts["newest"] + timedelta(seconds=1))
        results = [_measure("rules", rules, incidents, counts["events"])]
        for algorithm in ("isolation-forest", "lof"):
            t = time.monotonic()
            model = am.train(rows, algorithm=algorithm)
            found = model.findings(rows)
            entry = _measure(f"model ({algorithm})", found, incidents, counts["events"])
            entry["seconds"] = round(time.monotonic() - t, 2)
            results.append(entry)
            if algorithm == "isolation-forest":
                combined = {f.uid: f for f in [*rules, *found]}
                results.append(
                    _measure("rules + model (isolation-forest)", list(combined.values()), incidents, counts["events"])
                )
    summary = {
        "days": args.days,
        "seed": args.seed,
        "events": counts["events"],
        "feature_rows": len(rows),
        "build_seconds": round(built, 1),
        "results": results,
    }
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "model_eval.json").write_text(json.dumps(summary, indent=2))
    print(f"{counts['events']} events, {len(rows)} key-principal-hours, {len(incidents)} labelled incidents")
    print(f"{'detector':<36} {'findings':>8} {'precision':>9} {'recall':>7} {'recall (usage incidents)':>25}")
    for r in results:
        print(
            f"{r['detector']:<36} {r['findings']:>8} {r['precision']!s:>9} {r['recall']!s:>7} "
            f"{r['recall_usage_incidents']!s:>25}"
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
