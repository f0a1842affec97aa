"""``make bench``: issue #8's benchmark, every figure measured in one run on one machine.

    python bench/pipeline.py [--events 1000000] [--limit-events 200000] [--paced-seconds 30]
                             [--query-events 10000000] [--seed 11] [--profile-worker DIR]

1. **Parse limit** and 2. **load limit**: ``bench/limits.py`` over the first ``--limit-events`` of
   the corpus (one core; the warehouse writer alone).
3. **End to end**: ``--events`` records (``bench/corpus.py``: deterministic, ~1.5 KB each, gzip'd
   delivery files of 1,000) through ``kmo ingest cloudtrail`` -> Kafka (the embedded broker, same
   machine) -> ``kmo worker`` (every rule on) -> ``kmo sink`` -> DuckDB, each its own process, flat
   out: from the collector's start until the sink and both of the worker's streams have committed
   the end of their topics. Checked against the input: rows = distinct uids = records, no dead
   letters, and the findings the worker published equal ``kmo detect``'s replay of the same files.
4. **Latency at a paced rate** (1,000 events/s, then half the flat-out rate; fresh topics, worker and
   sink each time): this script is the collector here, reading, parsing and producing the same
   records with the collector's own parser and producer settings at the rate, and noting when it
   read each record. A finding's latency is from that moment to the finding naming the record
   reaching the findings topic (as a consumer sees it), also split at the moment the worker handed
   the finding to its producer (the record's CreateTime), by the scope of the finding's rule;
   queryable latency is to the sink committing the record's offset, which it does only after the
   DuckDB transaction holding it has committed.
5. **Memory and queries**: the peak RSS of each process (the kernel's ``VmHWM``, sampled every
   quarter second and when it stops); then a warehouse of ``--query-events`` rows (the end-to-end
   run's events, repeated with new uids and later times) and every saved query in ``sql/queries``
   over it, as ``kmo query`` runs them (to Arrow): the median of three warm runs after a cold one,
   over all the data and over its last 30 days.

A worker or sink that exits 75 (it found itself stalled: ``streams.worker.STALLED_EXIT``) is
restarted, as its supervisor would in production, and counted (``restarts``); any other exit fails
the run. Prints a table and, last, one JSON line; writes bench/results/pipeline.json. Not a test: a
measurement.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from kafka import TopicPartition
from kafka.errors import KafkaError

sys.path.insert(0, str(Path(__file__).parent))
import corpus
import limits

from analytics.saved_queries import load_all
from analytics.warehouse import open_warehouse, rebuild_usage_rollup
from ingest.batching import EventBatcher
from ingest.offline import parse_text, read_events
from ingest.schema import encode
from kmo.demo.stream_check import caught_up, compare, read_findings, rule_scopes
from kmo.kafka import committed_and_end, ensure_all_topics, ensure_topics, make_consumer, make_producer, partition_for
from kmo.settings import Settings
from kmo.topics import Topic
from streams.broker.embedded import EmbeddedKafka
from streams.forwarding import forwarded_topic
from streams.inventory import load_inventory
from streams.policy import load_policy
from streams.replay import replay
from streams.worker import LATE_EVENTS_LINE, LATE_REPORT_SECONDS, STALLED_EXIT

KMO = [sys.executable, "-m", "kmo.cli"]
WORKER_ARGS: list[str] = []
WORKERS = [1]
FORWARDED_RETENTION_S = [0]  # --forwarded-retention-s; 0: the broker's default
PACED_START = 60_000  # where, in each pass over the estate's fortnight, its seeded incidents begin
CACHE = Path(os.environ.get("KMO_BENCH_CACHE", Path.home() / ".cache" / "kmo" / "bench"))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def corpus_dir(events: int, seed: int) -> Path:
    """The corpus's files, written once per (events, seed) and kept: they are the same bytes."""
    path = CACHE / f"cloudtrail-{seed}-{events}"
    if not (path / "done").exists():
        shutil.rmtree(path, ignore_errors=True)
        started = time.monotonic()
        files, raw = corpus.write_corpus(path / "files", events, seed)
        (path / "done").write_text(json.dumps({"files": len(files), "bytes_uncompressed": raw}))
        log(f"corpus: {events:,} records in {len(files)} files written in {time.monotonic() - started:.0f} s")
    return path


@dataclass
class Stage:
    """One run of the pipeline's processes against their own topics and warehouse."""

    name: str
    bootstrap: str
    root: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    profiled: set[str] = field(default_factory=set)
    commands: dict[str, tuple[tuple[str, ...], list[str] | None]] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home = self.root / self.name
        self.home.mkdir(parents=True)
        self.env = dict(
            os.environ,
            KMO_HOME=str(self.home),
            KMO_KAFKA_BOOTSTRAP=self.bootstrap,
            KMO_TOPIC_PREFIX=f"{self.name}.",
            KMO_ABSENCE_SECONDS="3600",  # absence rules run on the wall clock: not what is measured
        )
        self.settings = Settings.from_env(self.env)
        self.topics = ensure_all_topics(self.settings, self.bootstrap)
        if FORWARDED_RETENTION_S[0]:  # created here first, the worker's own creation is a no-op
            forwarded = forwarded_topic(self.settings)
            config = (("retention.ms", str(1000 * FORWARDED_RETENTION_S[0])), ("segment.ms", "60000"))
            ensure_topics(self.bootstrap, [Topic(forwarded.name, forwarded.partitions, config)])
        wait_for_coordinator(self.bootstrap)

    @property
    def event_tps(self) -> list[TopicPartition]:
        """The events topic's partitions: what the sink, and the worker's key stream, read."""
        return [TopicPartition(self.topics.events.name, p) for p in range(self.settings.events_partitions)]

    @property
    def worker_tps(self) -> list[TopicPartition]:
        """Both of the worker's input topics: the events and the batches it forwards by principal."""
        by_principal = forwarded_topic(self.settings).name
        return self.event_tps + [TopicPartition(by_principal, p) for p in range(self.settings.events_partitions)]

    def start(self, name: str, *args: str, wrap: list[str] | None = None) -> subprocess.Popen:
        """``kmo ARGS`` as ``name`` (under ``wrap``, a profiler, when given), logging to NAME.log."""
        out = (self.home / f"{name}.log").open("ab")
        command = [*(wrap or []), *KMO, *args]
        self.commands[name] = (args, wrap)
        self.procs[name] = subprocess.Popen(command, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        if wrap:
            self.profiled.add(name)
        return self.procs[name]

    def reap(self, name: str, *, stop: bool = True) -> int | None:
        """Stop (SIGTERM) and wait for a process, or (``stop=False``) see whether it has exited; record
        its peak RSS from the kernel's accounting. Never Popen.poll(): that would reap it unseen."""
        proc = self.procs[name]
        if stop:  # py-spy writes its profile on SIGINT, and passes it on
            # os.kill, not Popen.send_signal: that polls first, reaping a process that already
            # exited, and the wait4 below then fails with "No child processes"
            os.kill(proc.pid, signal.SIGINT if name in self.profiled else signal.SIGTERM)
        self.sample_rss()
        pid, status, usage = os.wait4(proc.pid, 0 if stop else os.WNOHANG)
        if pid == 0:
            return None
        del self.procs[name]
        self.cpu_s[name] = round(self.cpu_s.get(name, 0.0) + usage.ru_utime + usage.ru_stime, 1)
        self.exit_codes[name] = os.waitstatus_to_exitcode(status)
        return self.exit_codes[name]

    def sample_rss(self) -> None:
        """Each running process's peak RSS so far (the kernel's VmHWM, since its exec; wait4's
        ru_maxrss would include what a forked child inherited from this large process)."""
        for name, proc in self.procs.items():
            mb = rss_now_mb(proc.pid)
            if mb is not None:
                self.peak_rss_mb[name] = max(mb, self.peak_rss_mb.get(name, 0.0))

    def restart_stalled(self) -> None:
        """Restart a worker or sink that exited 75 (EX_TEMPFAIL: it found its consumer stalled and
        stopped rather than hang; see ``streams.worker.STALLED_EXIT``), as docker-compose and the
        systemd units do in production, and count it: a restart costs time, which the rate includes.
        Any other exit is an error."""
        for name in [n for n in self.procs if n != "collector"]:
            code = self.reap(name, stop=False)
            if code is None:
                continue
            if code != STALLED_EXIT:
                raise RuntimeError(f"{self.name}: {name} exited {code} (log: {self.home / name}.log)")
            self.restarts[name] = self.restarts.get(name, 0) + 1
            log(f"{self.name}: {name} exited {code} (stalled); restarting it, as its supervisor would")
            args, wrap = self.commands[name]
            self.start(name, *args, wrap=wrap)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.reap(name)

    def wait_for_groups(self, timeout: float = 120.0) -> None:
        """Until the worker and the sink have joined their groups and hold partitions."""
        from kmo.kafka import admin

        client = admin(self.bootstrap)
        groups = [f"{self.settings.topic_prefix}kmo-worker", "kmo-sink"]
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                try:
                    described = client.describe_groups(groups)
                except KafkaError:  # the group coordinator is still being elected
                    described = {}
                want = {groups[0]: WORKERS[0], groups[1]: 1}
                if described and all(
                    d.get("group_state") == "Stable" and len(d.get("members") or ()) >= want[g]
                    for g, d in described.items()
                ):
                    return
                time.sleep(0.5)
        finally:
            client.close()
        raise RuntimeError(f"{self.name}: worker and sink did not join their groups in {timeout:.0f} s")


def wait_for_coordinator(bootstrap: str, timeout: float = 60.0) -> None:
    """Until the broker answers for consumer groups. A kafka-python consumer that starts while the
    group coordinator is still being elected can wait for it forever (dpkp/kafka-python#2373; seen
    here once: a sink that never joined); the benchmark does not start its consumers before."""
    from kmo.kafka import admin

    client = admin(bootstrap)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                client.describe_groups(["kmo-bench-probe"])
                return
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        client.close()


def rss_now_mb(pid: int, field_name: str = "VmHWM") -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field_name}:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def cpu_seconds(pid: int | None) -> float | None:
    """User and system CPU a running process has used (the broker is not this script's child)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (OSError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def committed(consumer: Any, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    return {tp: consumer.committed(tp) or 0 for tp in tps}


def sink_caught_up(probe: Any, tps: list[TopicPartition]) -> bool:
    """Has the sink's group committed the end of every events partition?"""
    return all(done >= end for done, end in committed_and_end(probe, tps).values())


def start_workers(stage: Stage) -> None:
    """``--workers`` stream workers in one consumer group (they share the partitions)."""
    for n in range(WORKERS[0]):
        stage.start("worker" if n == 0 else f"worker{n + 1}", "worker", *WORKER_ARGS)


def end_to_end(stage: Stage, files: Path, events: int, profile: Path | None) -> dict[str, Any]:
    """Flat out through every process; returns rate, per-stage finish times and the checks."""
    stage.start("sink", "sink")
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        spy = [str(Path(sys.executable).parent / "py-spy"), "record", "--subprocesses", "--format", "raw"]
        stage.start("worker", "worker", *WORKER_ARGS, wrap=[*spy, "-o", str(profile / "worker.folded"), "--"])
    else:
        start_workers(stage)
    stage.wait_for_groups()
    events_topic = stage.topics.events.name
    worker_probe = make_consumer(stage.bootstrap, f"{stage.settings.topic_prefix}kmo-worker")
    sink_probe = make_consumer(stage.bootstrap, "kmo-sink")
    event_tps, worker_tps = stage.event_tps, stage.worker_tps
    started = time.monotonic()
    stage.start("collector", "ingest", "cloudtrail", str(files))
    done: dict[str, float] = {}
    limit = 600 + events / 200  # far beyond any rate seen: a process that stopped making progress
    while len(done) < 3 and time.monotonic() - started < limit:
        if "collector" not in done and stage.reap("collector", stop=False) is not None:
            done["collector"] = time.monotonic() - started
        if "collector" in done:
            if "sink" not in done and sink_caught_up(sink_probe, event_tps):
                done["sink"] = time.monotonic() - started
            if "worker" not in done and caught_up(worker_probe, worker_tps, events_topic):
                done["worker"] = time.monotonic() - started
        stage.restart_stalled()
        stage.sample_rss()
        time.sleep(0.25)
    if len(done) < 3:
        missing = sorted({"collector", "sink", "worker"} - set(done))
        raise RuntimeError(f"end to end: {', '.join(missing)} did not finish within {limit:.0f} s (logs: {stage.home})")
    elapsed = max(done.values())
    worker_probe.close()
    sink_probe.close()
    collector_rc = stage.exit_codes.get("collector")
    findings = read_findings(stage.settings)
    time.sleep(LATE_REPORT_SECONDS + 1)  # the worker states its late events on a timer: the last count
    stage.stop_all()
    reader = make_consumer(stage.bootstrap, None)
    dead = sum(
        reader.end_offsets(
            [TopicPartition(stage.topics.dlq.name, p) for p in range(stage.topics.dlq.partitions)]
        ).values()
    )
    reader.close()
    con = open_warehouse(stage.settings.warehouse, read_only=True)
    rows, distinct = con.execute("SELECT count(*), count(DISTINCT uid) FROM events").fetchone()
    con.close()
    log(f"end to end: {events:,} events in {elapsed:.1f} s; replaying the same files offline to check findings")
    replayed = replay(
        read_events("aws.cloudtrail", [str(files)]), policy=load_policy(None), inventory=load_inventory(None)
    )
    match = compare(findings, replayed.findings)
    rule_of = {f.uid: f.rule_id for f in replayed.findings} | {
        u: d["finding_info"]["analytic"]["uid"] for u, d in findings.items()
    }
    return {
        "events": events,
        "seconds": round(elapsed, 1),
        "events_per_s": round(events / elapsed),
        "restarts": dict(stage.restarts),  # processes that exited 75 and were restarted
        "collector_done_s": round(done["collector"], 1),
        "sink_done_s": round(done["sink"], 1),
        "worker_done_s": round(done["worker"], 1),
        "collector_exit": collector_rc,
        "rows": rows,
        "distinct_uids": distinct,
        "dead_letters": dead,
        "findings_stream": len(findings),
        "findings_replay": sum(1 for f in replayed.findings if f.evidence),  # absence findings aside
        "findings_match_replay": match.same,
        "findings_only_stream": len(match.only_stream),
        "findings_only_replay": len(match.only_replay),
        "findings_count_differs": len(match.count_differs),
        # principal-window counts follow the stream's interleaving of key partitions
        # (kmo.demo.stream_check.Comparison says why): reported, not an error
        "findings_count_order_dependent": len(match.order_dependent),
        # which rules any difference came from: the first thing to know when the check fails
        "findings_differing_by_rule": dict(
            Counter(rule_of[u] for u in [*match.only_stream, *match.only_replay, *match.count_differs])
        ),
        "late_events": late_events(stage.home),
    }


def late_events(home: Path) -> dict[str, dict[str, int]]:
    """What the workers said of events that reached a window rule behind the newest window of their
    series (streams.rules.helpers.window_count): each worker's last statement, by scope, summed."""
    totals: dict[str, dict[str, int]] = {}
    for path in sorted(home.glob("worker*.log")):
        last: dict[str, tuple[int, int, int]] = {}
        for match in LATE_EVENTS_LINE.finditer(path.read_text(errors="replace")):
            last[match[1]] = (int(match[2]), int(match[3]), int(match[4]))
        for scope, (uncounted, behind, most) in last.items():
            total = totals.setdefault(scope, {"uncounted": 0, "behind": 0, "max_s": 0})
            total["uncounted"] += uncounted
            total["behind"] += behind
            total["max_s"] = max(total["max_s"], most)
    return totals


def paced(stage: Stage, seed: int, rate: int, seconds: float) -> dict[str, Any]:
    """Produce at ``rate`` records/s with the collector's parser and producer settings; measure
    read -> finding on the topic, and read -> committed by the sink (so queryable)."""
    stage.start("sink", "sink")
    start_workers(stage)
    stage.wait_for_groups()
    producer = make_producer(stage.bootstrap)
    read_at: dict[str, float] = {}
    offsets: dict[int, list[tuple[int, float]]] = {}  # partition -> [(offset, read time)] in offset order
    lock = threading.Lock()
    finding_lat: list[float] = []
    # each publication's latency in two parts, by the scope of its rule: read -> the worker handing
    # the finding to its producer (the record's CreateTime), and from there to the watcher's fetch
    # (the producer's linger, the broker, the fetch); the clocks are this machine's
    finding_parts: dict[str, list[tuple[float, float]]] = {}
    scopes = rule_scopes()
    wall_minus_mono = time.time() - time.monotonic()
    detail: list[dict[str, Any]] = []
    query_lat: list[float] = []
    query_when: list[float] = []  # the read time of each query_lat entry: latency over the run
    stop = threading.Event()

    def on_sent(reads: list[float]) -> Any:
        def record(meta: Any) -> None:
            with lock:
                for read in reads:  # a message's events share its offset: queryable once it is committed
                    bisect.insort(offsets.setdefault(meta.partition, []), (meta.offset, read))

        return record

    def watch_findings() -> None:
        reader = make_consumer(stage.bootstrap, None, fetch_max_wait_ms=5)
        tps = [TopicPartition(stage.topics.findings.name, p) for p in range(stage.topics.findings.partitions)]
        reader.assign(tps)
        seen: set[str] = set()
        while not stop.is_set():
            for recs in reader.poll(timeout_ms=50).values():
                now = time.monotonic()
                for rec in recs:
                    # The record that raised this publication is the newest one it names for the first
                    # time; older evidence is what a threshold rule counted before it fired.
                    info = orjson.loads(rec.value)["finding_info"]
                    related = info.get("related_events", [])
                    new = [read_at[u] for u in (e["uid"] for e in related) if u not in seen and u in read_at]
                    seen.update(e["uid"] for e in related)
                    if new:
                        read = max(new)
                        finding_lat.append(now - read)
                        created = rec.timestamp / 1000 - wall_minus_mono
                        rule = info["analytic"]["uid"]
                        scope = scopes.get(rule, "?")
                        finding_parts.setdefault(scope, []).append((created - read, now - created))
                        read_wall = datetime.fromtimestamp(read + wall_minus_mono)
                        detail.append(
                            {  # each publication, to lay beside the worker's log (--keep)
                                "rule": rule,
                                "scope": scope,
                                "read_at": read_wall.isoformat(timespec="milliseconds"),
                                "to_worker_send_ms": round(1000 * (created - read), 1),
                                "to_reader_ms": round(1000 * (now - read), 1),
                            }
                        )
        reader.close()

    def watch_sink() -> None:
        probe = make_consumer(stage.bootstrap, "kmo-sink")
        while not stop.is_set():
            marks = committed(probe, stage.event_tps)
            now = time.monotonic()
            with lock:
                for tp, mark in marks.items():
                    pending = offsets.get(tp.partition, [])
                    cut = bisect.bisect_left(pending, (mark, -1.0))
                    query_lat.extend(now - read for _, read in pending[:cut])
                    query_when.extend(read for _, read in pending[:cut])
                    del pending[:cut]
            time.sleep(0.02)
        probe.close()

    threads = [threading.Thread(target=watch_findings), threading.Thread(target=watch_sink)]
    for t in threads:
        t.start()
    topic = stage.topics.events.name

    def send_message(partition: int, value: bytes, reads: list[float | None]) -> None:
        future = producer.send(topic, value=value, partition=partition)
        if reads[0] is not None:  # measured: each event's read time, under the message's offset
            future.add_callback(on_sent(reads))

    # the collector's batching (ingest.batching): what a tick read, one message per partition
    batcher = EventBatcher(send_message)
    partitions = stage.settings.events_partitions

    def pace(records: list[bytes], measured: bool) -> float:
        """Parse and produce ``records`` at ``rate``; returns when the last is sent."""
        sent, owed, begun = 0, 0.0, time.monotonic()
        while sent < len(records):
            owed += rate * 0.01  # a tick of 10 ms
            n = min(int(owed), len(records) - sent)
            owed -= n
            for raw in records[sent : sent + n]:
                read = time.monotonic()
                for outcome in parse_text("aws.cloudtrail", raw.decode(), "paced"):
                    event = outcome.event
                    partition = partition_for(event.partition_key, partitions)
                    batcher.add(partition, encode(event), read if measured else None)
                    if measured:
                        read_at[event.uid] = read
            batcher.flush()  # as a collector's commit does: a tick's events leave together
            sent += n  # the producer's linger (10 ms, as the collector's) sends them; no flush per tick
            time.sleep(max(0.0, begun + (sent / rate) - time.monotonic()))
        return begun

    # Warm-up: the processes have just started (Faust recovers its tables, DuckDB opens, the Python
    # caches fill); 10 s at the rate, from the quiet start of the fortnight, until all is caught up.
    warm = [orjson.dumps({"Records": [r]}) for r in corpus.records(rate * 10, seed, start=0)]
    pace(warm, measured=False)
    producer.flush()
    wait_caught_up(stage)
    # then the stretch of the estate's fortnight where its seeded incidents are: records that raise findings
    measured = [orjson.dumps({"Records": [r]}) for r in corpus.records(int(rate * seconds), seed, start=PACED_START)]
    dirty_at_start = dirty_mb()
    started = pace(measured, measured=True)
    sent = len(measured)
    producer.flush()
    achieved = sent / (time.monotonic() - started)
    by_window: dict[int, list[float]] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(query_lat) < sent:
        stage.restart_stalled()
        time.sleep(0.1)
    time.sleep(3)  # the last findings
    stop.set()
    for t in threads:
        t.join()
    for when, lat in zip(query_when, query_lat, strict=True):
        by_window.setdefault(int((when - started) // 5), []).append(lat)
    log(
        "queryable p99 per 5 s: "
        + ", ".join(f"{percentiles('q', v)['q_p99_ms']:.0f}" for _, v in sorted(by_window.items()))
    )
    producer.close()
    stage.stop_all()
    (stage.home / "finding_latency.json").write_text(json.dumps(detail, indent=1))
    return {
        "rate_per_s": rate,
        "achieved_per_s": round(achieved),
        "records": sent,
        "finding_publications": len(finding_lat),
        "queryable_events": len(query_lat),
        "restarts": dict(stage.restarts),
        # the kernel's dirty and writeback pages when the measured stretch began: a flat-out stage just
        # before can leave the broker's log to write back (suspected, then ruled out, as the cause of
        # seconds-late stages, which were a held fetch: streams.faust_app)
        "dirty_mb_at_start": dirty_at_start,
        **percentiles("detect", finding_lat),
        **percentiles("queryable", query_lat),
        "detect_parts_ms": {
            scope: {
                "findings": len(parts),
                **percentiles("to_worker_send", [a for a, _ in parts]),
                **percentiles("send_to_seen", [b for _, b in parts]),
            }
            for scope, parts in sorted(finding_parts.items())
        },
    }


def dirty_mb() -> float | None:
    """Dirty plus writeback memory, MB (/proc/meminfo), or None where there is no such file."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    except OSError:
        return None
    return round(sum(int(fields[name].split()[0]) for name in ("Dirty", "Writeback")) / 1024, 1)


def wait_caught_up(stage: Stage, timeout: float = 300.0) -> None:
    """Until the sink and the worker have committed the end of what they read."""
    event_tps, worker_tps = stage.event_tps, stage.worker_tps
    worker = make_consumer(stage.bootstrap, f"{stage.settings.topic_prefix}kmo-worker")
    sink = make_consumer(stage.bootstrap, "kmo-sink")
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if sink_caught_up(sink, event_tps) and caught_up(worker, worker_tps, stage.topics.events.name):
                return
            stage.restart_stalled()
            time.sleep(0.2)
    finally:
        worker.close()
        sink.close()
    raise RuntimeError(f"{stage.name}: the sink and the worker did not catch up in {timeout:.0f} s")


def percentiles(name: str, values: list[float]) -> dict[str, float | None]:
    if not values:
        return {f"{name}_p50_ms": None, f"{name}_p99_ms": None}
    ordered = sorted(values)
    pick = lambda q: round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)  # noqa: E731
    return {f"{name}_p50_ms": pick(0.50), f"{name}_p99_ms": pick(0.99), f"{name}_max_ms": pick(1.0)}


def query_times(source: Path, target: Path, events: int) -> dict[str, Any]:
    """A warehouse of ``events`` rows from the end-to-end run's (copies with new uids and later
    times), then every saved query over it: the median of three warm runs, and the cold first."""
    started = time.monotonic()
    build_query_warehouse(source, target, events)
    built = time.monotonic() - started
    timed = time_saved_queries(target)
    return {"rows": timed["rows"], "build_s": round(built, 1), "queries": timed["queries"]}


def build_query_warehouse(source: Path, target: Path, events: int) -> None:
    con = open_warehouse(target)
    con.execute(f"ATTACH '{source}' AS src (READ_ONLY)")
    have = con.execute("SELECT count(*) FROM src.events").fetchone()[0]
    copies = -(-events // have)
    span = con.execute("SELECT epoch(max(time)) - epoch(min(time)) + 1 FROM src.events").fetchone()[0]
    for k in range(copies):
        n = min(have, events - k * have)
        shifted = f"uid || '-{k}' AS uid, time + to_seconds({k} * {span}) AS time"  # integers only
        con.execute(f"INSERT INTO events SELECT * REPLACE ({shifted}) FROM src.events LIMIT {n}")  # noqa: S608
    # the other tables as the run left them (the findings, inventory and coverage some queries join)
    tables = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'src' AND table_type = 'BASE TABLE' "
        "AND table_name NOT IN ('events', 'usage_rollup') AND table_name NOT LIKE 'schema%'"
    ).fetchall()
    for (table,) in tables:
        con.execute(f'INSERT INTO "{table}" SELECT * FROM src."{table}"')  # noqa: S608 - names from the catalog
    con.execute("DETACH src")
    rebuild_usage_rollup(con)  # what the sink keeps with every batch, for the copied events
    con.execute("CHECKPOINT")
    con.close()


def time_saved_queries(path: Path) -> dict[str, Any]:
    """Every saved query over the warehouse at ``path``, as ``kmo query`` runs them (to Arrow): the
    median of three warm runs after a cold one, over all the data and over its last 30 days."""
    con = open_warehouse(path, read_only=True)
    [(total, first, last)] = con.execute("SELECT count(*), min(time), max(time) FROM events").fetchall()
    [(key, principal)] = con.execute(
        "SELECT key_uri, actor_principal FROM events WHERE key_uri IS NOT NULL "
        "GROUP BY ALL ORDER BY count(*) DESC LIMIT 1"
    ).fetchall()
    month = last - timedelta(days=30)
    windows = {"all": (first, last), "last_30_days": (month, last)}
    timings: dict[str, dict[str, float]] = {}
    for name, query in load_all().items():
        timed: dict[str, float] = {}
        for window, (since, until) in windows.items():
            values = {
                "start": since.isoformat(), "since": since.isoformat(),
                "end": until.isoformat(), "until": until.isoformat(), "as_of": until.isoformat(),
                "before": until.isoformat(), "key": key, "principal": principal,
            }  # fmt: skip
            given = {p.name: values.get(p.name, query.example.get(p.name, "")) for p in query.params}
            params = query.bind(given)
            runs: list[float] = []
            while len(runs) < 4 and sum(runs) < 5000:  # a slow query is timed once: it is far off anyway
                t0 = time.perf_counter()
                con.sql(query.sql, params=params).to_arrow_table()  # as `kmo query` runs it
                runs.append((time.perf_counter() - t0) * 1000)
            timed[f"{window}_cold_ms"] = round(runs[0], 1)
            timed[f"{window}_ms"] = round(statistics.median(runs[1:] or runs), 1)
            if not any(p.type == "timestamp" for p in query.params):
                break  # no window: one figure
        timings[name] = timed
    con.close()
    return {"rows": total, "queries": timings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--limit-events", type=int, default=200_000)
    parser.add_argument("--paced-seconds", type=float, default=40.0)
    parser.add_argument("--query-events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--profile-worker", type=Path, help="record the end-to-end worker with py-spy here")
    parser.add_argument("--paced-rates", default="1000,half", help="events/s; 'half': half the flat-out rate")
    parser.add_argument("--workers", type=int, default=1, help="stream worker processes (one consumer group)")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory (logs, warehouse)")
    parser.add_argument("--worker-args", default="", help="extra arguments for kmo worker (e.g. --loglevel info)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["limits", "paced", "queries"])
    parser.add_argument(
        "--forwarded-retention-s",
        type=int,
        default=0,
        help="keep the worker's forwarded topic this long, not the broker's week: a ten-million-event "
        "run does not fit on this machine's disk with two full copies of the events (its consumer is "
        "the same worker, seconds behind)",
    )
    args = parser.parse_args()
    FORWARDED_RETENTION_S[0] = args.forwarded_retention_s
    WORKER_ARGS.extend(args.worker_args.split())
    WORKERS[0] = args.workers

    data = corpus_dir(args.events, args.seed)
    files = sorted((data / "files").glob("*.json.gz"))
    figures: dict[str, Any] = {"events": args.events, "seed": args.seed}
    if "limits" not in args.skip:
        log(f"limits over {args.limit_events:,} events")
        first = files[: -(-args.limit_events // corpus.FILE_RECORDS)]
        figures["limits"] = limits.measure([p.read_bytes() for p in first])
    root = Path(tempfile.mkdtemp(prefix="kmo-bench-"))
    broker = EmbeddedKafka(Settings.from_env(dict(os.environ, KMO_HOME=str(root / "broker"))))
    bootstrap = broker.start()
    try:
        log(f"end to end: {args.events:,} events")
        e2e = Stage("e2e", bootstrap, root)
        broker_cpu = cpu_seconds(broker.pid())
        try:
            figures["end_to_end"] = end_to_end(e2e, data / "files", args.events, args.profile_worker)
        finally:
            e2e.stop_all()
        broker_cpu_after = cpu_seconds(broker.pid())
        figures["peak_rss_mb"] = dict(e2e.peak_rss_mb)
        figures["end_to_end"]["cpu_s"] = dict(e2e.cpu_s)
        if broker_cpu is not None and broker_cpu_after is not None:  # over the stage, the checks included
            figures["end_to_end"]["cpu_s"]["broker"] = round(broker_cpu_after - broker_cpu, 1)
        broker_pid = broker.pid()
        figures["peak_rss_mb"]["broker"] = rss_now_mb(broker_pid) if broker_pid else None
        rate = figures["end_to_end"]["events_per_s"]
        if "paced" not in args.skip:
            figures["paced"] = []
            for r in [max(1, rate // 2) if r == "half" else int(r) for r in args.paced_rates.split(",")]:
                log(f"latency at {r:,} events/s for {args.paced_seconds:.0f} s")
                stage = Stage(f"paced{r}", bootstrap, root)
                try:
                    figures["paced"].append(paced(stage, args.seed, r, args.paced_seconds))
                finally:
                    stage.stop_all()
    finally:
        broker.stop()
    if "queries" not in args.skip:
        log(f"saved queries over {args.query_events:,} events")
        figures["queries"] = query_times(e2e.settings.warehouse, root / "queries.duckdb", args.query_events)
    report(figures)
    e2e_figures = figures["end_to_end"]
    wrong = [
        f"{name} {got:,} (expected {want:,})"
        for name, got, want in [
            ("rows", e2e_figures["rows"], args.events),
            ("distinct uids", e2e_figures["distinct_uids"], args.events),
            ("dead letters", e2e_figures["dead_letters"], 0),
            # with these three at 0, every finding of replay's is in the stream with its count, but
            # for principal-window counts that follow the stream's order (reported, not an error)
            ("findings with another count", e2e_figures["findings_count_differs"], 0),
            ("findings only in the stream", e2e_figures["findings_only_stream"], 0),
            ("findings only in replay", e2e_figures["findings_only_replay"], 0),
        ]
        if got != want
    ]
    if wrong:  # a fast pipeline that loses or invents anything is not a result
        log("CHECK FAILED: " + "; ".join(wrong))
        sys.exit(1)
    if args.keep:
        log(f"kept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


def report(figures: dict[str, Any]) -> None:
    e2e = figures["end_to_end"]
    lim = figures.get("limits", {})
    at_1000 = next((p for p in figures.get("paced", []) if p["rate_per_s"] == 1000), {})
    queries = figures.get("queries", {}).get("queries", {})
    summary = {
        "events_per_s": e2e["events_per_s"],
        "parse_limit_per_s": lim.get("parse_limit_per_s"),
        "ratio_to_parse_limit": round(e2e["events_per_s"] / lim["parse_limit_per_s"], 3) if lim else None,
        "load_limit_per_s": lim.get("load_limit_per_s"),
        "detect_p50_ms": at_1000.get("detect_p50_ms"),
        "detect_p99_ms": at_1000.get("detect_p99_ms"),
        "queryable_p99_ms": at_1000.get("queryable_p99_ms"),
        "peak_rss_mb": max(v for k, v in figures["peak_rss_mb"].items() if k != "broker" and v),
        "query_ms_max": max((q["all_ms"] for q in queries.values()), default=None),
    }
    figures["summary"] = summary
    rows = [
        ("parse limit (one core; the faster of two passes)", f"{lim.get('parse_limit_per_s', 0):,} events/s", ""),
        ("load limit (DuckDB insert)", f"{lim.get('load_limit_per_s', 0):,} rows/s", ""),
        ("end to end, flat out", f"{e2e['events_per_s']:,} events/s", ">= 0.30 x parse limit"),
        ("  ratio to parse limit", f"{summary['ratio_to_parse_limit']}", ">= 0.30"),
        ("  collector / sink / worker done at", f"{e2e['collector_done_s']} / {e2e['sink_done_s']} / "
         f"{e2e['worker_done_s']} s", ""),
        ("  rows / distinct / dead letters", f"{e2e['rows']:,} / {e2e['distinct_uids']:,} / {e2e['dead_letters']}",
         f"= {e2e['events']:,} / {e2e['events']:,} / 0"),
        ("  findings: same / only stream / only replay", f"{e2e['findings_match_replay']} / "
         f"{e2e['findings_only_stream']} / {e2e['findings_only_replay']}", "all / 0 / 0"),
        ("  counts differing: order-dependent / other", f"{e2e['findings_count_order_dependent']} / "
         f"{e2e['findings_count_differs']}", "principal windows / 0"),
        ("  differing findings by rule", ", ".join(f"{r} {n}" for r, n in e2e["findings_differing_by_rule"].items())
         or "none", ""),
        ("  late events: counted alone / behind, by scope", ", ".join(
            f"{scope} {v['uncounted']:,} / {v['behind']:,} (at most {v['max_s']:,} s)"
            for scope, v in e2e["late_events"].items()) or "none reported", "0 counted alone"),
        ("  restarts (a process exited 75)", _restarts(e2e), ""),
    ]  # fmt: skip
    for p in figures.get("paced", []):
        rows += [
            (f"at {p['rate_per_s']:,}/s (achieved {p['achieved_per_s']:,}): finding p50 / p99",
             f"{p['detect_p50_ms']} / {p['detect_p99_ms']} ms ({p['finding_publications']:,} findings)",
             "p99 <= 50 ms" if p["rate_per_s"] == 1000 else ""),
            ("  queryable p50 / p99", f"{p['queryable_p50_ms']} / {p['queryable_p99_ms']} ms", "p99 <= 1000 ms"),
            ("  dirty + writeback memory when it began", f"{p['dirty_mb_at_start']} MB", ""),
            ("  restarts (a process exited 75)", _restarts(p), ""),
        ]  # fmt: skip
        for scope, part in p.get("detect_parts_ms", {}).items():
            rows.append((
                f"  {scope} rules ({part['findings']}): to the worker's send / on to the reader, p50; p99",
                f"{part['to_worker_send_p50_ms']} / {part['send_to_seen_p50_ms']}; "
                f"{part['to_worker_send_p99_ms']} / {part['send_to_seen_p99_ms']} ms",
                "",
            ))  # fmt: skip
    for name, mb in figures["peak_rss_mb"].items():
        rows.append((f"peak RSS {name}", f"{mb} MB", "< 1536 MB" if name == "worker" else ""))
    if queries:
        n = figures["queries"]["rows"]
        for name, q in sorted(queries.items(), key=lambda kv: -kv[1]["all_ms"]):
            month = f", {q['last_30_days_ms']} ms over the last 30 days" if "last_30_days_ms" in q else ""
            rows.append((f"  query {name} over {n:,} events", f"{q['all_ms']} ms{month}", "< 300 ms"))
    width = max(len(r[0]) for r in rows)
    for label, value, target in rows:
        print(f"{label:<{width}}  {value:<36} {target}")
    limits.save("pipeline", figures, summary)


def _restarts(stage_figures: dict[str, Any]) -> str:
    restarts = stage_figures.get("restarts") or {}
    return ", ".join(f"{name} {n}" for name, n in sorted(restarts.items())) or "none"


if __name__ == "__main__":
    main()
