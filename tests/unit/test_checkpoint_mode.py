"""The sink's WAL folds: rare while it works through a backlog, DuckDB's default once it keeps up."""

from __future__ import annotations

import duckdb
import pytest

from analytics.checkpoint_mode import DEFAULT_MB, CheckpointMode


def threshold(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0]


def test_a_backlog_raises_the_threshold_and_catching_up_restores_the_default(tmp_path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    default = threshold(con)
    mode = CheckpointMode(con, backlog_mb=256)
    assert mode.after_batch(behind=False) == DEFAULT_MB and threshold(con) == default
    assert mode.after_batch(behind=True) == 256 and threshold(con) == "256.0 MiB"
    assert mode.after_batch(behind=True) == 256
    assert mode.after_batch(behind=False) == DEFAULT_MB and threshold(con) == default == "16.0 MiB"


def test_zero_keeps_the_default_always(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KMO_WAREHOUSE_BACKLOG_CHECKPOINT_MB", "0")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    mode = CheckpointMode(con)
    assert mode.after_batch(behind=True) == DEFAULT_MB and threshold(con) == "16.0 MiB"


def test_a_bad_value_is_a_config_error_naming_the_variable(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kmo.gc_tuning import tune_for_streaming
    from kmo.settings import ConfigError

    monkeypatch.setenv("KMO_WAREHOUSE_BACKLOG_CHECKPOINT_MB", "lots")
    with pytest.raises(ConfigError, match="KMO_WAREHOUSE_BACKLOG_CHECKPOINT_MB"):
        CheckpointMode(duckdb.connect(str(tmp_path / "w.duckdb")))
    monkeypatch.setenv("KMO_GC_GEN0", "-5")
    with pytest.raises(ConfigError, match="KMO_GC_GEN0"):
        tune_for_streaming()
