"""Events as hive-partitioned Parquet (``events/date=YYYY-MM-DD/source=<source>/part-<batch>.parquet``)
in a directory or an S3 bucket, for when one DuckDB file is outgrown: DuckDB, Trino, Athena or Spark
read the tree as one table partitioned by date and source.

The sink writes each batch's files before it commits DuckDB and the Kafka offsets. A crash between the
two re-delivers the batch, and the re-delivered batch may be cut differently, so the Parquet tree is
at-least-once: read it with the event ``uid`` as the key, e.g. in DuckDB::

    SELECT * FROM read_parquet('<root>/events/*/*/*.parquet', hive_partitioning = true)
    QUALIFY row_number() OVER (PARTITION BY uid ORDER BY ingested_at) = 1

(the DuckDB file stays exactly-once). File names derive from the Kafka positions of the batch, so a
batch delivered the same way twice overwrites its own files rather than adding copies.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


class ParquetSink:
    """Writes Arrow tables of events (``analytics.warehouse.EVENT_COLUMNS``) under ``root``."""

    def __init__(self, root: str, s3_client: Any | None = None) -> None:
        self.root = root
        if root.startswith("s3://"):
            import boto3

            bucket, _, prefix = root[len("s3://") :].partition("/")
            self.bucket, self.prefix = bucket, prefix.strip("/")
            self.s3 = s3_client or boto3.client("s3")
        else:
            self.bucket, self.prefix, self.s3 = None, root, None

    @staticmethod
    def batch_id(positions: list[tuple[str, int, int]]) -> str:
        """A name for a batch from its Kafka positions (topic, partition, offset)."""
        digest = hashlib.sha256(repr(sorted(positions)).encode()).hexdigest()
        return digest[:20]

    def write(self, table: pa.Table, batch: str) -> list[str]:
        """One file per (date, source) in ``table``; returns the keys or paths written."""
        if table.num_rows == 0:
            return []
        dates = pc.strftime(table["time"], format="%Y-%m-%d", locale="C")
        table = table.append_column("date", dates)
        written = []
        for date in sorted(set(dates.to_pylist())):
            day = table.filter(pc.equal(table["date"], date))
            for source in sorted(set(day["source"].to_pylist())):
                part = day.filter(pc.equal(day["source"], source)).drop_columns(["date"])
                relative = f"events/date={date}/source={source}/part-{batch}.parquet"
                written.append(self._put(relative, part))
        return written

    def _put(self, relative: str, table: pa.Table) -> str:
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        if self.s3 is not None:
            key = f"{self.prefix}/{relative}" if self.prefix else relative
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=buffer.getvalue())
            return f"s3://{self.bucket}/{key}"
        path = Path(self.prefix) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".parquet.tmp")
        tmp.write_bytes(buffer.getvalue())
        os.replace(tmp, path)  # readers never see half a file
        return str(path)
