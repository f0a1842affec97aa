"""The sink's Parquet tree: events partitioned by date and source, in a directory and in S3 (moto's
server over HTTP), readable as one table, each event present (at least once, keyed by uid)."""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from analytics.query import run_query
from analytics.sink import run_sink
from ingest.collect import collect
from kmo.demo.cloudtrail_files import render_files, write_files
from kmo.demo.estate import Estate
from kmo.settings import Settings

pytestmark = pytest.mark.integration


def _estate(tmp_path: Path) -> Path:
    """Two days of the demo's CloudTrail: several dates, one source."""
    out = tmp_path / "cloudtrail"
    write_files(out, render_files(Estate(seed=3, days=2).generate()))
    return out


def test_a_directory_tree_that_duckdb_reads_as_one_partitioned_table(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    collect(settings, "aws.cloudtrail", [str(_estate(tmp_path))])
    run_sink(settings.with_(parquet=str(root)), until_idle=3)
    in_duckdb = run_query(settings, "SELECT count(*) AS n, count(DISTINCT uid) AS u FROM events").to_pylist()[0]
    tree = (
        duckdb.connect()
        .execute(
            "SELECT count(*) AS n, count(DISTINCT uid) AS u, count(DISTINCT date) AS days, any_value(source) AS source "
            "FROM read_parquet(?, hive_partitioning = true)",
            [f"{root}/events/*/*/*.parquet"],
        )
        .fetchone()
    )
    assert tree[1] == in_duckdb["u"] == in_duckdb["n"] > 1000  # every event, keyed by uid
    assert tree[2] >= 2 and tree[3] == "aws.cloudtrail"
    assert all(p.name.startswith("date=") for p in (root / "events").iterdir())
    assert not list(root.rglob("*.tmp"))


def test_an_s3_bucket_through_boto3(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        for var, value in {
            "AWS_ENDPOINT_URL_S3": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(var, value)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="kmo-lake")
        collect(settings, "aws.cloudtrail", [str(_estate(tmp_path))])
        run_sink(settings.with_(parquet="s3://kmo-lake/audit"), until_idle=3)
        keys = [
            o["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket="kmo-lake")
            for o in page.get("Contents", [])
        ]
        assert keys and all(k.startswith("audit/events/date=") and "/source=aws.cloudtrail/part-" in k for k in keys)
        rows = sum(
            pq.read_table(io.BytesIO(s3.get_object(Bucket="kmo-lake", Key=k)["Body"].read())).num_rows for k in keys
        )
        assert rows == run_query(settings, "SELECT count(*) AS n FROM events").to_pylist()[0]["n"]
    finally:
        server.stop()
