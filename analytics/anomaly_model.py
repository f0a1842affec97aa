"""The learned anomaly model: what normal key use looks like, per key, principal and hour.

* **Features** come from one SQL definition, the saved query ``model_features``. Training and batch
  scoring run it on the warehouse; the stream worker runs the *same text* on an in-memory DuckDB
  holding the hour it has just closed (:class:`HourWindows`), so the model never sees features
  computed two ways. Counts enter as ``log1p``; ``night`` and ``weekend`` as flags.
* **Model**: scikit-learn's IsolationForest, one per key manager (unsupervised: the labels are never
  used in training), each hour also measured against its own pair's, key's and principal's usual,
  the anomaly threshold at a quantile of each model's training scores. ``bench/model_eval.py``
  measured this against the labelled demo incidents, beside LocalOutlierFactor, a single model over
  every source, and the rules; the README has the figures.
* **Saved** under ``$KMO_HOME/models/<id>/`` as ``model.joblib`` (0600) plus ``meta.json``: the
  feature query's SHA-256 (a model is refused if the query changed since), the training window,
  row count, threshold and library versions.
* **Findings** are ordinary OCSF findings of type ``anomalous-usage`` from rule ``model.isolation_forest``,
  uid from (key, principal, hour): batch and stream scoring of the same hour never duplicate.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from actions.private_files import write_private
from analytics.saved_queries import get, run_saved
from ingest.schema import format_timestamp
from streams.findings import Action, AnalyticType, Category, Finding, Severity, finding_uid

RULE_ID = "model.isolation_forest"
COUNTS = (
    "events", "usage_events", "decrypts", "encrypts", "signs", "lifecycle_events", "failures",
    "distinct_ops", "distinct_ips", "distinct_agents", "principal_keys_in_hour", "key_principals_in_hour",
)  # fmt: skip
FLAGS = ("night", "weekend")
# learned from the training rows and kept in the model: how this pair, this key and this principal
# usually behave, so an hour is judged against its own history and not against the whole estate
RELATIVE = ("pair_rarity", "vs_pair_usual", "vs_key_usual", "vs_principal_breadth")
FEATURES = COUNTS + FLAGS + RELATIVE
MIN_ROWS = 50  # fewer hours than this for a key manager: its hours are judged by the model of all of them
ALL = "*"


class ModelError(RuntimeError):
    """No model, or one that does not fit this kmo (feature query changed); the message says which."""


def feature_sql() -> str:
    return get("model_features").sql


def feature_hash() -> str:
    return hashlib.sha256(feature_sql().encode()).hexdigest()


def baselines(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per pair, key and principal: the median events in an active hour, and the pair's active hours."""
    pair: dict[str, list[int]] = {}
    key: dict[str, list[int]] = {}
    breadth: dict[str, list[int]] = {}
    for r in rows:
        pair.setdefault(f"{r['key_uri']}|{r['principal']}", []).append(r["events"])
        key.setdefault(r["key_uri"], []).append(r["events"])
        breadth.setdefault(r["principal"], []).append(r["principal_keys_in_hour"])
    return {
        "pair_median": {k: float(np.median(v)) for k, v in pair.items()},
        "pair_hours": {k: float(len(v)) for k, v in pair.items()},
        "key_median": {k: float(np.median(v)) for k, v in key.items()},
        "principal_breadth": {k: float(np.median(v)) for k, v in breadth.items()},
    }


def relative(row: dict[str, Any], base: dict[str, dict[str, float]]) -> list[float]:
    """The row against its own history: an unseen pair is as rare as can be, an unseen key or
    principal is measured against 1 event / 1 key an hour."""
    pair = f"{row['key_uri']}|{row['principal']}"
    hours = base["pair_hours"].get(pair, 0.0)
    return [
        1.0 / (1.0 + hours),
        math.log((1 + row["events"]) / (1 + base["pair_median"].get(pair, 1.0))),
        math.log((1 + row["events"]) / (1 + base["key_median"].get(row["key_uri"], 1.0))),
        math.log((1 + row["principal_keys_in_hour"]) / (1 + base["principal_breadth"].get(row["principal"], 1.0))),
    ]


def matrix(rows: list[dict[str, Any]], base: dict[str, dict[str, float]]) -> np.ndarray:
    return np.array(
        [[math.log1p(r[c]) for c in COUNTS] + [float(r[f]) for f in FLAGS] + relative(r, base) for r in rows],
        dtype=float,
    ).reshape(len(rows), len(FEATURES))


@dataclass
class Part:
    """One key manager's model: its estimator and where its anomalous tail starts."""

    estimator: Any
    threshold: float
    severe_below: float


@dataclass
class Model:
    """One model per key manager (each one's traffic has its own shape; measured: one model over all
    of them flags the small sources wholesale), plus one over everything for managers with few hours."""

    parts: dict[str, Part]
    meta: dict[str, Any]
    base: dict[str, dict[str, float]]

    def scores(self, rows: list[dict[str, Any]]) -> list[tuple[float, Part]]:
        """Each row's score (higher is more normal; scikit-learn's decision_function) and its part."""
        out: list[tuple[float, Part]] = [(0.0, self.parts[ALL])] * len(rows)
        groups: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            groups.setdefault(row["provider"] if row["provider"] in self.parts else ALL, []).append(i)
        for provider, indexes in groups.items():
            part = self.parts[provider]
            values = part.estimator.decision_function(matrix([rows[i] for i in indexes], self.base))
            for i, value in zip(indexes, values, strict=True):
                out[i] = (float(value), part)
        return out

    def findings(self, rows: list[dict[str, Any]]) -> list[Finding]:
        out = []
        for row, (value, part) in zip(rows, self.scores(rows), strict=True):
            if value >= part.threshold:
                continue
            severity = Severity.HIGH if value < part.severe_below else Severity.MEDIUM
            hour = row["hour"].astimezone(UTC)
            out.append(
                Finding(
                    uid=finding_uid(RULE_ID, f"{row['key_uri']}|{row['principal']}", hour),
                    rule_id=RULE_ID,
                    title="Key use unlike what the model learned as normal",
                    category=Category.ANOMALOUS_USAGE,
                    severity=severity,
                    action=Action.INVESTIGATE,
                    analytic_type=AnalyticType.LEARNING,
                    message=f"{row['principal']} used {row['key_uri']} unusually in the hour from "
                    f"{format_timestamp(hour)} ({row['events']} events, {row['failures']} failures, "
                    f"{row['principal_keys_in_hour']} keys by this principal; score {value:.3f})",
                    keys=[row["key_uri"]],
                    actor=None if row["principal"] == "?" else row["principal"],
                    first_seen=hour,
                    last_seen=hour + timedelta(hours=1) - timedelta(microseconds=1),
                    count=int(row["events"]),
                    evidence=list(row["evidence"]),
                    details={"score": round(value, 4), "threshold": round(part.threshold, 4),
                             **{f: row[f] for f in COUNTS + FLAGS}},
                )
            )  # fmt: skip
        return out


def _fit(x: np.ndarray, algorithm: str, quantile: float, seed: int) -> Part:
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor

    if algorithm == "isolation-forest":
        estimator: Any = IsolationForest(n_estimators=200, contamination="auto", random_state=seed).fit(x)
    elif algorithm == "lof":
        estimator = LocalOutlierFactor(n_neighbors=min(35, len(x) - 1), novelty=True).fit(x)
    else:
        raise ModelError(f"unknown algorithm {algorithm!r} (isolation-forest, lof)")
    scores = estimator.decision_function(x)
    return Part(estimator, float(np.quantile(scores, 1 - quantile)), float(np.quantile(scores, (1 - quantile) / 5)))


def train(
    rows: list[dict[str, Any]], *, algorithm: str = "isolation-forest", quantile: float = 0.995, seed: int = 0
) -> Model:
    """Fit one model per key manager (and one over all); each threshold is the ``1 - quantile``
    lower tail of its own training scores."""
    if len(rows) < MIN_ROWS:
        raise ModelError(f"{len(rows)} feature rows are too few to learn normal use from (at least {MIN_ROWS})")
    base = baselines(rows)
    by_provider: dict[str, list[dict[str, Any]]] = {ALL: rows}
    for row in rows:
        by_provider.setdefault(row["provider"], []).append(row)
    parts = {
        provider: _fit(matrix(group, base), algorithm, quantile, seed)
        for provider, group in by_provider.items()
        if len(group) >= MIN_ROWS
    }
    meta = {
        "algorithm": algorithm,
        "features": list(FEATURES),
        "feature_query_sha256": feature_hash(),
        "rows": len(rows),
        "rows_by_provider": {p: len(g) for p, g in by_provider.items() if p != ALL},
        "threshold_quantile": quantile,
        "thresholds": {p: part.threshold for p, part in parts.items()},
    }
    return Model(parts, meta, base)


def versions() -> dict[str, str]:
    import sklearn

    return {"scikit-learn": sklearn.__version__, "numpy": np.__version__, "duckdb": duckdb.__version__}


def save(model: Model, directory: Path, *, window: tuple[datetime, datetime]) -> Path:
    """``model.joblib`` (0600) and ``meta.json`` under a new directory; ``current`` names it."""
    import joblib

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = directory / stamp
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = target / "model.joblib"
    joblib.dump({"parts": model.parts, "baselines": model.base}, path)
    os.chmod(path, 0o600)
    meta = model.meta | {
        "trained_at": stamp,
        "window": {"start": format_timestamp(window[0]), "end": format_timestamp(window[1])},
        "versions": versions(),
    }
    (target / "meta.json").write_text(json.dumps(meta, indent=2))
    write_private(directory / "current", stamp.encode())
    return target


def load(directory: Path) -> Model:
    """The current model under ``directory``; refused when its feature query is not this kmo's."""
    import joblib

    pointer = directory / "current"
    if not pointer.exists():
        raise ModelError(f"no model under {directory}: run `kmo model train` first")
    target = directory / pointer.read_text().strip()
    meta = json.loads((target / "meta.json").read_text())
    if meta["feature_query_sha256"] != feature_hash():
        raise ModelError("the model was trained on a different feature query: retrain it (`kmo model train`)")
    saved = joblib.load(target / "model.joblib")
    return Model(saved["parts"], meta, saved["baselines"])


def features_from_warehouse(settings: Any, start: datetime, end: datetime) -> list[dict[str, Any]]:
    return run_saved(
        settings, "model_features", {"start": format_timestamp(start), "end": format_timestamp(end)}
    ).to_pylist()


class HourWindows:
    """The stream side: events buffered by event-time hour. An hour is scored once an event more than
    ``grace`` past its end arrives, or, by :meth:`flush_idle`, once the stream has gone quiet and has
    seen past the hour's end. The features come from the same SQL, on an in-memory DuckDB.

    Limits, stated: an event for an hour already scored is not rescored (it is counted in ``late``;
    ``kmo model score`` over the warehouse sees it); hours still open when the worker stops are not
    scored live. A backfill read out of time order wants a long ``grace`` and lets the idle flush score;
    the events of open hours are held in memory until then.
    """

    def __init__(self, model: Model, grace: timedelta = timedelta(minutes=5)) -> None:
        self.model, self.grace = model, grace
        self.open: dict[datetime, list[Any]] = {}
        self.scored: set[datetime] = set()
        self.newest: datetime | None = None
        self.late = 0

    def add(self, events: list[Any]) -> list[Finding]:
        for event in events:
            if event.key is None:
                continue
            hour = event.time.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            if hour in self.scored:
                self.late += 1
                continue
            self.open.setdefault(hour, []).append(event)
            self.newest = event.time if self.newest is None or event.time > self.newest else self.newest
        return self._close(self.grace)

    def flush_idle(self) -> list[Finding]:
        """Score every open hour that ended before the newest event seen."""
        return self._close(timedelta(0))

    def _close(self, grace: timedelta) -> list[Finding]:
        if self.newest is None:
            return []
        closed = sorted(h for h in self.open if self.newest >= h + timedelta(hours=1) + grace)
        if not closed:
            return []
        events = [e for hour in closed for e in self.open.pop(hour)]
        # one query and one model call for every closed hour (the SQL groups by hour itself)
        findings = self.model.findings(hour_features(events, closed[0], closed[-1] + timedelta(hours=1)))
        self.scored.update(closed)
        if len(self.scored) > 24 * 14:  # remember two weeks of scored hours, no more
            self.scored = set(sorted(self.scored)[-24 * 14 :])
        return findings


def hour_features(events: list[Any], hour: datetime, end: datetime | None = None) -> list[dict[str, Any]]:
    """``model_features`` over events from ``hour`` to ``end`` (one hour by default), computed by the
    same SQL in an in-memory DuckDB."""
    from analytics.warehouse import events_to_arrow

    con = duckdb.connect()
    try:
        con.register("events", events_to_arrow(events))
        params = {"start": format_timestamp(hour), "end": format_timestamp(end or hour + timedelta(hours=1))}
        return con.sql(feature_sql(), params=params).to_arrow_table().to_pylist()
    finally:
        con.close()
