"""Run a file-based collector over local paths and ``s3://`` prefixes (``kmo ingest <source> ...``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

from ingest.checkpoints import CheckpointStore
from ingest.collectors.inputs import Input, local_inputs, s3_inputs
from ingest.deadletter import DeadLetterWriter
from ingest.heartbeat import encode_heartbeat, heartbeat
from ingest.parsers import PAIRING, PARSERS, SEQUENCED, framer_for
from ingest.runner import Collector, RunSummary
from kmo.kafka import ensure_all_topics, make_producer, resolve_bootstrap
from kmo.settings import ConfigError, Settings
from kmo.topics import Topics


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


def make_collector(settings: Settings, source: str, producer: Any, checkpoints: CheckpointStore) -> Collector:
    """A :class:`Collector` for ``source`` writing to this deployment's topics."""
    parser = PARSERS.get(source)
    if parser is None:
        raise ConfigError(f"unknown source {source!r}; known: {', '.join(sorted(PARSERS))}")
    topics = Topics.for_settings(settings)
    return Collector(
        source=source,
        parser=parser,
        producer=producer,
        events_topic=topics.events.name,
        dead_letters=DeadLetterWriter(producer, topics.dlq.name, settings.home / "quarantine"),
        checkpoints=checkpoints,
        pairing=PAIRING.get(source),
        framer=framer_for(source),
        sequenced=SEQUENCED.get(source),
    )


def follow(
    settings: Settings,
    source: str,
    path: str,
    stop: Any,
    *,
    listen: tuple[str, int] | None = None,
    poll_seconds: float = 0.5,
    unanswered_after: float = 60.0,
    heartbeat_seconds: float = 60.0,
) -> RunSummary:
    """Tail ``path`` (or, with ``listen``, a spool fed by a socket listener) until ``stop`` is set,
    with a heartbeat every ``heartbeat_seconds``."""
    from ingest.tail import FileTailer
    from ingest.vault_socket import SpoolListener, spool_path

    bootstrap = resolve_bootstrap(settings)
    topics = ensure_all_topics(settings, bootstrap)
    producer = make_producer(bootstrap)
    checkpoints = CheckpointStore(settings.state_dir / "checkpoints.sqlite3")
    listener = None
    if listen is not None:
        target = spool_path(settings.home, listen[1])
        listener = SpoolListener(listen[0], listen[1], target)
        target = Path(target)
    else:
        target = Path(path)
    tailer = FileTailer(
        make_collector(settings, source, producer, checkpoints),
        target,
        checkpoints,
        poll_seconds=poll_seconds,
        unanswered_after=unanswered_after,
    )
    last_beat = [0.0]

    def beat(summary: RunSummary) -> None:
        now = time.monotonic()
        if now - last_beat[0] >= heartbeat_seconds:
            last_beat[0] = now
            doc = heartbeat(summary, [str(target)])
            producer.send(topics.coverage.name, key=source.encode(), value=encode_heartbeat(doc))

    try:
        return tailer.run(stop, on_pass=beat)
    finally:
        beat(tailer.summary)
        if listener is not None:
            listener.close()
        producer.flush()
        producer.close()
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
    if source not in PARSERS:
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
            collector = make_collector(settings, source, producer, checkpoints)
            collector.batch_records = batch_records
            collector.progress = bar.update if bar is not None else None
            summary = collector.run(inputs if inputs is not None else _inputs(locations, s3_client))
        names = list(locations) or [i.name for i in inputs or []]
        beat = heartbeat(summary, names)
        producer.send(topics.coverage.name, key=source.encode(), value=encode_heartbeat(beat)).get(timeout=30)
        return summary
    finally:
        producer.close()
        checkpoints.close()
