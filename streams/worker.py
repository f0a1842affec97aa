"""``kmo worker``: the detection engine in Faust. Thin wiring only: all logic is in streams.engine.

Two agents and a timer:

* ``detect_by_key`` reads the events topic (keyed by key uri) in batches, decodes with kmo's codec
  (undecodable messages go to the dead-letter topic with their raw bytes), runs the event- and
  key-scoped rules, publishes findings, and forwards the events to a topic partitioned by
  principal, one message per partition per batch (streams.forwarding says why);
* ``detect_by_principal`` reads that stream and runs the principal-scoped rules (bursts across keys);
* a timer runs the absence rules (orphaned keys, rotation overdue) against the inventory.

State lives in two Faust tables (changelogged to Kafka, so a restarted or rebalanced worker picks
it up), one entry per key uri or principal, on the partition that carries its events, sealed at
each batch's end and written when Faust commits offsets (streams.table_state says why).
Findings carry deterministic uids: re-processing after a crash re-publishes the same finding,
never a new one. A batch waits at most ``KMO_WORKER_BATCH_SECONDS`` (0.02) to fill: the latency
it adds at a trickle (bench/README.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import faust
import orjson

from ingest.schema import DecodeError
from ingest.schema.batch import decode_message
from kmo.faults import crash_point
from kmo.kafka import MAX_MESSAGE_BYTES, ensure_all_topics, faust_credentials, resolve_bootstrap
from kmo.settings import Settings
from kmo.topics import Topic
from streams.engine import Engine
from streams.faust_app import DEFAULT_FETCH_WAIT_MS
from streams.faust_app import App as WorkerApp
from streams.findings import Finding
from streams.forwarding import decode_forwarded, forward_batches, forwarded_topic
from streams.inventory import load_inventory
from streams.policy import load_policy
from streams.rules import load_rules
from streams.rules.base import LateEvents
from streams.table_state import ColocatedTable, FlushStateOnCommit, TableBuckets

log = logging.getLogger(__name__)


def _raw_topic(app: faust.App, topic: Topic) -> Any:
    return app.topic(
        topic.name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=topic.partitions,
    )


def make_app(
    settings: Settings,
    *,
    inventory_path: str | None = None,
    policy_path: str | None = None,
    absence_seconds: float = 300.0,
) -> faust.App:
    bootstrap = resolve_bootstrap(settings)
    topics = ensure_all_topics(settings, bootstrap)
    by_principal = forwarded_topic(settings)
    from kmo.kafka import ensure_topics

    ensure_topics(bootstrap, [by_principal])
    session = settings.session_timeout_ms / 1000
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)  # Faust makes its datadir, not the parents
    app = WorkerApp(  # the broker holds its fetch 20 ms, not 1.5 s: streams.faust_app says why
        f"{settings.topic_prefix}kmo-worker",
        fetch_wait_ms=int(os.environ.get("KMO_WORKER_FETCH_WAIT_MS", str(DEFAULT_FETCH_WAIT_MS))),
        broker=f"kafka://{bootstrap}",
        broker_credentials=faust_credentials(),  # TLS / SASL from the environment, as for every kmo client
        store="memory://",
        topic_partitions=settings.events_partitions,
        topic_replication_factor=1,
        table_standby_replicas=0,
        web_enabled=False,
        broker_session_timeout=session,
        broker_heartbeat_interval=max(0.3, session / 4),
        producer_max_request_size=MAX_MESSAGE_BYTES,
        consumer_max_fetch_size=MAX_MESSAGE_BYTES,
        stream_buffer_maxsize=256,  # messages of up to 100 events (256 KB) each: at most 64 MB a stream
        datadir=str(settings.home / "worker"),
        Table=ColocatedTable,  # entries on their events' partition (streams.table_state says why)
    )
    policy = load_policy(policy_path or os.environ.get("KMO_POLICY"))
    inventory = load_inventory(inventory_path or os.environ.get("KMO_INVENTORY"))
    rules = load_rules()
    key_table = app.Table("detect-by-key", default=None, partitions=settings.events_partitions, use_partitioner=True)
    principal_table = app.Table(
        "detect-by-principal", default=None, partitions=settings.events_partitions, use_partitioner=True
    )
    key_state, principal_state = TableBuckets(key_table), TableBuckets(principal_table)
    app.sensors.add(FlushStateOnCommit(key_state, principal_state))
    key_engine = Engine(
        rules,
        policy=policy,
        inventory=inventory,
        scopes=frozenset({"event", "key", "absence"}),
        state=lambda scope, bucket: key_state.store(bucket),
    )
    principal_engine = Engine(
        rules,
        policy=policy,
        inventory=inventory,
        scopes=frozenset({"principal"}),
        state=lambda scope, bucket: principal_state.store(bucket),
    )
    events_in = _raw_topic(app, topics.events)
    principal_in = _raw_topic(app, by_principal)
    findings_out = _raw_topic(app, topics.findings)
    dlq_out = _raw_topic(app, topics.dlq)

    async def publish(findings: list[Finding]) -> None:
        for finding in findings:
            await findings_out.send(key=finding.uid.encode(), value=orjson.dumps(finding.to_ocsf()))
        for engine in (key_engine, principal_engine):
            # a rule that raised: reported on the dead-letter topic (rule id, event uid, error; no payload)
            for error in engine.errors:
                meta = {
                    "kmo-stage": b"rule",
                    "kmo-source": error.rule_id.encode(),
                    "kmo-origin": error.event_uid.encode(),
                    "kmo-reason": error.error[:2000].encode(),
                }
                await dlq_out.send(key=error.rule_id.encode(), value=b"", headers=meta)
            engine.errors.clear()

    async def dead_letter(value: bytes, stage: bytes, reason: str) -> None:
        """A message the worker cannot read, kept whole on the dead-letter topic with the reason."""
        await dlq_out.send(key=b"worker", value=value, headers={"kmo-stage": stage, "kmo-reason": reason.encode()})

    def decode_batch(batch: list[bytes]) -> tuple[list, list[bytes], list[DecodeError]]:
        """(events, each one's bytes to forward, the lines that are not events): several events a
        message (ingest.schema.batch), a bad line dead-lettered alone. The bytes forwarded leave out
        the provider's record (raw_data), which no principal-scoped rule reads (streams.forwarding)."""
        good, raws, bad = [], [], []
        for value in batch:
            events, lines, errors = decode_message(value, drop_raw_data=True)
            good += events
            raws += lines
            bad += errors
        return good, raws, bad

    # How long a batch waits to fill: at a trickle, the latency it adds (issue #8 asks findings
    # within 50 ms at p99). At 1,000 events/s, with the fetch bounded (streams.faust_app), findings
    # p50 / p99 over 100,000-event runs: 0.05 s 49-106 / 102-199 ms (5 runs), 0.02 s 36-37 / 66-111
    # ms (4), 0.01 s 32-34 / 46-115 ms (2). 0.02: 0.01 did not lower the tail, and 0.02 kept the flat-
    # out rate (2,936 events/s over a million, 2,452-2,943 at 0.05).
    # (Before that fix, windows under 0.05 s had made findings seconds late: bench/README.md.)
    batch_seconds = float(os.environ.get("KMO_WORKER_BATCH_SECONDS", "0.02"))
    # when each agent last had events: the model's idle flush waits until the whole worker is quiet
    last_event = {"key": 0.0, "principal": 0.0}
    batches_done = [0]  # both agents' batches: the stall check's measure of work done

    @app.agent(events_in)
    async def detect_by_key(stream: Any) -> None:
        async for batch in stream.take(64, within=batch_seconds):  # messages of up to 100 events each
            started = last_event["key"] = time.monotonic()
            batches_done[0] += 1
            key_state.begin_batch()
            events, raws, bad = decode_batch(batch)
            for error in bad:
                await dead_letter(error.raw, b"stream", error.reason)
            findings = key_engine.process(events)
            await publish(findings)
            log.info(
                "by key: %d events, %d findings, %d dead-lettered, %d state buckets to write; %.0f ms",
                len(events), len(findings), len(bad), key_state.pending, 1000 * (time.monotonic() - started),
            )  # fmt: skip
            # one message per principal partition (streams.forwarding says why), sent through the
            # producer, which Faust flushes before it commits the offsets these events came from
            for partition, value in forward_batches(events, raws, by_principal.partitions):
                await app.producer.send(
                    by_principal.name, None, value, partition=partition, timestamp=None, headers=None
                )
            key_state.end_batch()  # last: Faust acks the batch next, with no await between (TableBuckets)

    windows = _model_windows(settings)
    windows_lock = asyncio.Lock()

    @app.agent(principal_in)
    async def detect_by_principal(stream: Any) -> None:
        async for batch in stream.take(64, within=batch_seconds):
            principal_state.begin_batch()
            events: list = []
            for value in batch:
                decoded, bad = decode_forwarded(value)
                events += decoded
                for error in bad:  # not ours after all: kept, with the reason, never dropped
                    await dead_letter(error.raw, b"forwarded", error.reason)
            findings = principal_engine.process(events)
            if windows is not None:  # the learned model, on the hours this batch closed
                async with windows_lock:  # scoring runs in a thread: the event loop (heartbeats) goes on
                    findings += await asyncio.to_thread(windows.add, events)
            last_event["principal"] = time.monotonic()
            batches_done[0] += 1
            await publish(findings)
            log.info("by principal: %d events, %d findings", len(events), len(findings))
            principal_state.end_batch()  # last: Faust acks the batch next, with no await between (TableBuckets)

    idle = float(os.environ.get("KMO_MODEL_IDLE_SECONDS", str(MODEL_IDLE_SECONDS)))

    @app.timer(interval=1.0)
    async def model_idle_flush() -> None:
        # both streams quiet: a pause of the principal stream alone (the key stream still working
        # through a backlog) would score hours whose events are still on their way
        quiet = time.monotonic() - max(last_event.values())
        if windows is not None and windows.open and quiet >= idle and not windows_lock.locked():
            async with windows_lock:
                await publish(await asyncio.to_thread(windows.flush_idle))

    @app.timer(interval=absence_seconds)
    async def absences() -> None:
        findings = key_engine.absences(datetime.now(UTC))
        if not key_state.busy:  # else the batch under way seals these changes with its own
            key_state.end_batch()
        await publish(findings)

    late_reported = {"key": LateEvents(), "principal": LateEvents()}

    @app.timer(interval=LATE_REPORT_SECONDS)
    async def report_late_events() -> None:
        # Events that missed their window are bursts possibly unseen: a warning, not silence. At
        # most every LATE_REPORT_SECONDS, and only when a count moved (info when none missed its
        # window); the last line holds the totals.
        for scope, engine in (("key", key_engine), ("principal", principal_engine)):
            late, before = engine.late, late_reported[scope]
            if late == before:
                continue
            missed = late.uncounted != before.uncounted
            log.log(logging.WARNING if missed else logging.INFO, late_events_line(scope, late, missed=missed))
            late_reported[scope] = replace(late)

    stall_seconds = float(os.environ.get("KMO_WORKER_STALL_SECONDS", "60"))
    if stall_seconds > 0:
        topic_names = {topics.events.name, by_principal.name}
        _watch_for_stalls(app, bootstrap, topic_names, stall_seconds, lambda: batches_done[0])
    return app


LATE_REPORT_SECONDS = 5.0  # how often the worker states its late events (when they moved)
# what reads the statement back (bench/pipeline.py): kept beside the text it parses
LATE_EVENTS_LINE = re.compile(
    r"late events by (\w+): (\d+) counted alone.*?\((\d+) behind .*? in all, at most (\d+) s\)"
)


def late_events_line(scope: str, late: LateEvents, *, missed: bool) -> str:
    """The worker's statement of one scope's late events (LATE_EVENTS_LINE reads it back)."""
    return (
        f"late events by {scope}: {late.uncounted} counted alone, their window no longer held "
        f"({late.behind} behind the newest window of their series in all, at most {late.max_seconds} s)"
        + ("; a burst among them may have gone unseen" if missed else "")
    )


def _stop_fetching(app: faust.App, owned: list[Any]) -> None:
    """The fault ``worker.stop_fetching``: what the chaos run saw, owned partitions that are never
    fetched again, and that a resume does not revive."""
    app.consumer.pause_partitions(owned)
    app.consumer.resume_partitions = lambda tps: None


STALLED_EXIT = 75  # EX_TEMPFAIL: restart me (docker-compose and systemd units do)


def _watch_for_stalls(
    app: faust.App, bootstrap: str, topic_names: set[str], stall_seconds: float, batches_done: Callable[[], int]
) -> None:
    """A timer that compares, for each partition this worker owns, the group's committed offset with
    the end of the partition (streams.stall_watch says why). A stalled partition is first resumed
    (Faust's own pause/resume); if it stalls again without progress, the worker exits with
    STALLED_EXIT for its supervisor to restart it: offsets are committed only after findings are
    flushed and state is changelogged, so a restart loses and duplicates nothing (the chaos run shows it).
    Table recovery that stops applying changes (seen too: "No event received for active tp since
    recovery start", for minutes) and a rebalance that does not end get the same exit."""
    from kafka import TopicPartition

    from kmo.kafka import committed_and_end, make_consumer
    from streams.stall_watch import StallWatch

    watch, phase_watch, agents_watch = StallWatch(stall_seconds), StallWatch(stall_seconds), StallWatch(stall_seconds)
    resumed_at: list[float] = []  # when partitions were last resumed: a stall soon after ends the worker
    reader: list[Any] = []

    def offsets(owned: list[Any]) -> dict[Any, tuple[int, int]]:
        if not reader:  # reads the group's committed offsets; never joins the group or commits
            reader.append(make_consumer(bootstrap, app.conf.id))
        ktps = {TopicPartition(tp.topic, tp.partition): tp for tp in owned}
        return {ktps[k]: pair for k, pair in committed_and_end(reader[0], ktps).items()}

    def exit_stalled(what: str) -> None:
        log.error("%s; exiting (%d) so the supervisor restarts the worker", what, STALLED_EXIT)
        logging.shutdown()
        os._exit(STALLED_EXIT)

    pending: list[Any] = []  # the offsets read in flight (kafka-python's client is not shared across threads)

    @app.timer(interval=max(1.0, stall_seconds / 4))
    async def stall_check() -> None:
        now = time.monotonic()
        if app.in_recovery or app.rebalancing:
            # reading changelogs back, or the group agreeing who owns what: both must end, and a
            # recovery must keep applying changes (Faust counts only the partitions it has heard from)
            watch.reset()
            agents_watch.reset()
            remaining = app.tables.recovery.active_remaining_total() if app.in_recovery else 0
            phase = "table recovery" if app.in_recovery else "rebalance"
            if phase_watch.observe(now, {phase: (-remaining, 1)}):
                exit_stalled(f"{phase}: no progress for {stall_seconds:.0f} s ({remaining} changes left)")
            return
        phase_watch.reset()
        owned = sorted(tp for tp in app.consumer.assignment() if tp.topic in topic_names)
        if owned:
            crash_point("worker.stop_fetching", lambda: _stop_fetching(app, owned))
        if pending and not pending[0].done():
            return  # the last read still waits on the broker
        pending[:] = [asyncio.ensure_future(asyncio.to_thread(offsets, owned))]
        try:
            current = await asyncio.wait_for(asyncio.shield(pending[0]), timeout=stall_seconds)
        except Exception as exc:  # the broker away or slow: the next check tries again
            log.warning("stall check skipped: %s", str(exc) or type(exc).__name__)
            return
        waiting = {tp: end - committed for tp, (committed, end) in current.items() if end > committed}
        if waiting:
            log.info("stall check: %d records waiting on %d partitions", sum(waiting.values()), len(waiting))
        stalled = watch.observe(now, current)
        # seen too: no batch for a minute while offsets crept forward a few at a time (so no
        # partition looked stuck): records waiting and the agents idle is a stall of them all
        done = batches_done()
        if agents_watch.observe(now, {"agents": (done, done + 1 if waiting else done)}):
            stalled = sorted(set(stalled) | set(waiting))
        if not stalled:
            return
        names = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in stalled)
        if resumed_at and now - resumed_at[0] < 3 * stall_seconds:
            exit_stalled(f"partitions {names}: still no progress after a resume")
        log.warning("partitions %s: records waiting, no progress for %.0f s: resuming them", names, stall_seconds)
        app.consumer.resume_partitions(stalled)
        resumed_at[:] = [now]
        watch.reset()
        agents_watch.reset()


MODEL_IDLE_SECONDS = 10.0  # the stream quiet this long: score the hours it has seen past


def _model_windows(settings: Settings) -> Any:
    """Live scoring with the learned model when one is trained (``kmo model train``), else None.
    Scoring runs on the principal stream, which sees all of a principal's keys in an hour; with
    several workers, the per-key breadth feature covers only this worker's share of a key's principals."""
    from datetime import timedelta

    from analytics.anomaly_model import HourWindows, ModelError, load

    try:
        model = load(settings.home / "models")
    except ModelError as exc:
        log.info("no learned model (%s): live model scoring is off", exc)
        return None
    grace = timedelta(seconds=float(os.environ.get("KMO_MODEL_GRACE_SECONDS", "300")))
    log.info("live model scoring on (%s, grace %s)", model.meta["algorithm"], grace)
    return HourWindows(model, grace)


def run_worker(
    settings: Settings, *, inventory: str | None = None, policy: str | None = None, loglevel: str = "warn"
) -> None:
    """Run the worker until SIGTERM/SIGINT (Faust handles both with a clean shutdown)."""
    app = make_app(
        settings,
        inventory_path=inventory,
        policy_path=policy,
        absence_seconds=float(os.environ.get("KMO_ABSENCE_SECONDS", "300")),
    )
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
