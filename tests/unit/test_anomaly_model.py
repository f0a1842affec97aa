"""The learned model: one feature definition for training, batch and live scoring; saved with what
it was trained on; live hour windows flag the same hours as batch scoring."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analytics import anomaly_model as am
from ingest.offline import read_events
from kmo.demo.offline_warehouse import build
from kmo.settings import Settings

SOURCES = [("aws.cloudtrail", "cloudtrail"), ("vault.audit", "vault"), ("gcp.audit", "gcp"),
           ("azure.keyvault", "azure"), ("aws.cloudhsm", "cloudhsm"), ("thales.luna", "luna")]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("model-wh")
    settings = Settings.from_env({"KMO_HOME": str(home)})
    counts = build(settings.warehouse, home / "estate")
    start, end = datetime(2026, 11, 1, tzinfo=UTC), counts["newest"] + timedelta(seconds=1)
    rows = am.features_from_warehouse(settings, start, end)
    model = am.train(rows)
    events = sorted(
        (e for source, d in SOURCES for e in read_events(source, [str(home / "estate" / d)])), key=lambda e: e.time
    )
    return settings, model, rows, events, (start, end)


def test_training_is_saved_with_its_provenance_and_refused_once_the_features_change(
    trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _settings, model, rows, _events, window = trained
    target = am.save(model, tmp_path / "models", window=window)
    meta = json.loads((target / "meta.json").read_text())
    assert meta["feature_query_sha256"] == am.feature_hash() and meta["rows"] == len(rows)
    assert set(meta["versions"]) == {"scikit-learn", "numpy", "duckdb"} and meta["window"]["start"].startswith(
        "2026-11-01"
    )
    assert oct((target / "model.joblib").stat().st_mode & 0o777) == "0o600"
    loaded = am.load(tmp_path / "models")
    assert [f.uid for f in loaded.findings(rows)] == [f.uid for f in model.findings(rows)]
    monkeypatch.setattr(am, "feature_hash", lambda: "something else")
    with pytest.raises(am.ModelError, match="different feature query"):
        am.load(tmp_path / "models")
    with pytest.raises(am.ModelError, match="too few"):
        am.train(rows[:10])


def test_one_feature_definition_in_the_warehouse_and_in_memory(trained) -> None:
    settings, _model, _rows, events, _window = trained
    hour = datetime(2026, 11, 29, 3, tzinfo=UTC)
    in_memory = am.hour_features([e for e in events if hour <= e.time < hour + timedelta(hours=1)], hour)
    warehouse = am.features_from_warehouse(settings, hour, hour + timedelta(hours=1))
    assert in_memory == warehouse and len(in_memory) > 5


def test_live_hour_windows_flag_the_hours_batch_scoring_flags(trained) -> None:
    _settings, model, rows, events, _window = trained
    batch = {f.uid for f in model.findings(rows)}
    windows = am.HourWindows(model, grace=timedelta(minutes=5))
    live = []
    for i in range(0, len(events), 97):  # arriving in small batches, in time order
        live += windows.add(events[i : i + 97])
    live += windows.flush_idle()
    assert batch and {f.uid for f in live} == batch
    assert windows.add(events[:3]) == [] and windows.late == 3  # hours already scored are not rescored
    assert all(f.category.value == "anomalous-usage" and f.evidence for f in live)


def test_kmo_model_train_and_score(trained, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from kmo.cli import main

    settings, *_ = trained
    monkeypatch.setenv("KMO_HOME", str(settings.home))
    period = "2026-11-01T00:00:00Z/2026-12-31T00:00:00Z"
    assert main(["model", "score", "--period", period]) == 2  # nothing trained yet
    assert "kmo model train" in capsys.readouterr().err
    assert main(["model", "train", "--period", period]) == 0
    assert "key-principal-hours" in capsys.readouterr().out
    assert main(["model", "score", "--period", period]) == 0
    out = capsys.readouterr()
    lines = [json.loads(line) for line in out.out.splitlines()]
    assert lines and all(d["finding_info"]["analytic"]["uid"] == am.RULE_ID for d in lines)
    assert f"{len(lines)} anomalous" in out.err
