"""Run a file-based collector over local paths and ``s3://`` prefixes (``kmo ingest <source> ...``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from datetime import datetime
from typing import Any

from ingest.checkpoints import CheckpointStore
from ingest.collectors.inputs import Input, local_inputs, s3_inputs
from ingest.deadletter import DeadLetterWriter
from ingest.heartbeat import encode_heartbeat, heartbeat
from ingest.parsers import PAIRING, PARSERS, SEQUENCED, framer_for
from ingest.runner import Collector, RunSummary
from kmo.kafka import ensure_all_topics, make_producer, resolve_bootstrap
from kmo.settings import ConfigError, Settings


def _inputs(locations: Sequence[str], s3_client: Any) -> Iterator[Input]:
    for loc in locations:
        if loc.startswith("s3://"):
            if s3_client is None:
                import boto3  # only when an S3 location is given: keeps local runs offline

                # boto3 honours AWS_ENDPOINT_URL(_S3), so moto or MinIO work without code changes.
                s3_client = boto3.client("s3")
            yield from s3_inputs(loc, s3_client)
        else:
            yield from local_inputs(loc)


def collect_gcp_live(
    settings: Settings,
    project: str,
    *,
    client: Any = None,
    since: datetime | None = None,
    show_progress: bool | None = False,
) -> RunSummary:
    """One pass over a project's Cloud KMS audit logs through the Logging API (see
    :mod:`ingest.collectors.gcp_logging`); the cursor advances only after a successful run."""
    from ingest.collectors.gcp_logging import Cursor, LoggingApiInput, default_since, make_client

    checkpoints = CheckpointStore(settings.state_dir / "checkpoints.sqlite3")
    try:
        name = f"gcp-logging/{project}"
        cursor = Cursor.loads(checkpoints.get_cursor(name), since or default_since())
        source = LoggingApiInput(client or make_client(project), project, cursor)
        summary = collect(settings, "gcp.audit", [], inputs=[source], show_progress=show_progress)
        if summary.ok:
            checkpoints.save_cursor(name, source.next_cursor.dumps())
        return summary
    finally:
        checkpoints.close()


def collect(
    settings: Settings,
    source: str,
    locations: Sequence[str],
    *,
    show_progress: bool | None = None,
    s3_client: Any = None,
    batch_records: int = 5000,
    inputs: Sequence[Input] | None = None,
) -> RunSummary:
    """Read every input under ``locations`` with ``source``'s parser and produce to Kafka.

    Raises:
        ConfigError: unknown source, or no broker configured.
    """
    parser = PARSERS.get(source)
    if parser is None:
        raise ConfigError(f"unknown source {source!r}; known: {', '.join(sorted(PARSERS))}")
    bootstrap = resolve_bootstrap(settings)
    topics = ensure_all_topics(settings, bootstrap)
    producer = make_producer(bootstrap)
    checkpoints = CheckpointStore(settings.state_dir / "checkpoints.sqlite3")
    show = sys.stderr.isatty() if show_progress is None else show_progress
    bar_cm: Any = nullcontext(None)
    if show:
        from tqdm import tqdm

        bar_cm = tqdm(unit=" records", desc=f"ingest {source}", file=sys.stderr, mininterval=0.5)
    try:
        with bar_cm as bar:
            collector = Collector(
                source=source,
                parser=parser,
                producer=producer,
                events_topic=topics.events.name,
                dead_letters=DeadLetterWriter(producer, topics.dlq.name, settings.home / "quarantine"),
                checkpoints=checkpoints,
                batch_records=batch_records,
                progress=bar.update if bar is not None else None,
                pairing=PAIRING.get(source),
                framer=framer_for(source),
                sequenced=SEQUENCED.get(source),
            )
            summary = collector.run(inputs if inputs is not None else _inputs(locations, s3_client))
        names = list(locations) or [i.name for i in inputs or []]
        beat = heartbeat(summary, names)
        producer.send(topics.coverage.name, key=source.encode(), value=encode_heartbeat(beat)).get(timeout=30)
        return summary
    finally:
        producer.close()
        checkpoints.close()
