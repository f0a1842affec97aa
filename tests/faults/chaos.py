"""One accounted chaos run (issue #7): the whole pipeline as real processes, killed at random.

A broker of its own (it is restarted mid-run, so not the test session's), a real OpenBao with the
transit keys the Vault audit log names, and as separate OS processes: the CloudTrail collector
(``--watch``, fed one delivery file at a time, as CloudTrail delivers), the Vault collector, the sink,
the Faust worker and the responder (``enforce``: it really rotates transit keys). While the estate
streams through, a seeded random schedule SIGKILLs one of them every few seconds and restarts it; in
the middle the broker itself is SIGKILLed and started again, and a second worker joins the group and
later leaves it (a rebalance each way). A process that dies on its own (the broker away) is restarted
too, and counted (a worker that stops fetching exits 75 on its own: streams/stall_watch.py).

Then it accounts for every input record, against what the same files give offline (``ingest.offline``,
``streams.replay``):

* every event exactly once in DuckDB (rows = distinct uids = the offline events);
* every unusable record in the dead-letter topic under its own origin, none missing, none extra
  (a record re-sent after a crash between flush and checkpoint is a second copy of the same origin:
  counted and reported, as consumers see it once by origin);
* the findings: the same uids as replay, one row each in DuckDB's findings table;
* the actions: each (finding, key) the policy enforces rotated once, and the transit key's version
  moved by exactly that many.

``run_chaos`` returns the figures; ``tests/faults/test_chaos.py`` asserts them; ``python -m
tests.faults.chaos [--seed N]`` prints them (the README's table comes from such a run).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac

from actions.audit_log import AuditLog
from analytics.query import QueryError, run_query
from ingest.offline import OfflineStats, read_events
from kmo.demo.cloudtrail_files import render_files
from kmo.demo.estate import Estate
from kmo.demo.other_sources import generate_all
from kmo.demo.stream_check import compare, read_findings
from kmo.kafka import group_lag
from kmo.settings import Settings
from kmo.topics import Topics
from streams.broker.embedded import EmbeddedKafka
from streams.inventory import Inventory
from streams.policy import load_policy
from streams.replay import replay
from tests.conftest import stop_process
from tests.integration.test_vault_live import run_openbao
from tests.kafka_helpers import headers, read_all

# findings the responder enforces: both fire on the demo's Vault incident (a root token exporting a key)
ENFORCED = {"vault.root_token_use": "rotate", "any.key_export": "rotate"}
KMO = [sys.executable, "-m", "kmo.cli"]


@dataclass
class Managed:
    """One supervised process: restarted whenever it is not running, until (for a one-shot) it succeeds."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    log_from: int = 0  # where this start's part of the log begins
    oneshot: bool = False
    popen: subprocess.Popen | None = None
    down_until: float = 0.0
    starts: int = 0
    killed: int = 0
    died: list[int] = field(default_factory=list)  # exit codes of exits we did not cause
    last_words: list[str] = field(default_factory=list)  # what each of those exits logged last
    done: bool = False
    wanted: bool = True

    def start(self) -> None:
        self.log_from = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.starts += 1

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def tend(self, now: float) -> None:
        if self.done or not self.wanted:
            return
        if self.popen is not None and self.popen.poll() is not None:
            rc = self.popen.returncode
            self.popen = None
            if rc == 0 and self.oneshot:
                self.done = True
                return
            if rc != -signal.SIGKILL:
                self.died.append(rc)
                self.last_words.append(_last_words(self.log, self.log_from))
                self.down_until = now + 1.0
        if self.popen is None and now >= self.down_until:
            self.start()

    def kill(self, now: float, down: float) -> bool:
        if not self.running():
            return False
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=30)
        self.popen = None
        self.killed += 1
        self.down_until = now + down
        return True

    def stop(self) -> None:
        self.wanted = False
        if self.popen is not None:
            stop_process(self.popen, timeout=60)


NOISE = ("Connect call failed", "NodeNotReadyError", "ECONNREFUSED", "Unable to update metadata", "Connection lost")


def _last_words(log: Path, since: int, lines: int = 12) -> str:
    """The end of what a process logged since its start, without the broker-away noise: for a test
    failure that says why a process died, not only that it did."""
    with log.open("rb") as f:
        f.seek(since)
        text = f.read().decode("utf-8", "replace")
    kept = [line[:300] for line in text.splitlines() if line.strip() and not any(n in line for n in NOISE)]
    return "\n".join(kept[-lines:])


@dataclass
class ChaosConfig:
    seed: int = 7
    days: int = 3
    keys_per_account: int = 6
    files_per_second: float = 12.0
    kill_every: tuple[float, float] = (1.5, 4.0)  # seconds between kills, uniform
    down_for: tuple[float, float] = (0.2, 2.0)  # how long a killed process stays down
    catch_up_timeout: float = 240.0


def _bad_cloudtrail_file(template: dict[str, Any]) -> bytes:
    """A delivery file with one good record and three that cannot be events (dead letters)."""
    good = dict(template, eventID="chaos-good-0001")
    no_time = {k: v for k, v in template.items() if k != "eventTime"} | {"eventID": "chaos-bad-no-time"}
    bad_time = dict(template, eventID="chaos-bad-time", eventTime="the day before yesterday")
    text = json.dumps({"Records": [good, no_time, bad_time, "not a record"]}).encode()
    return gzip.compress(text, mtime=0)


def _inputs(config: ChaosConfig, root: Path) -> tuple[list[tuple[str, bytes]], Path]:
    """The CloudTrail delivery files (in delivery order, for the feeder) and the Vault audit log."""
    estate = Estate(seed=config.seed, days=config.days, keys_per_account=config.keys_per_account)
    records = estate.generate()
    files = sorted(render_files(records).items())
    kms = next(r for r in records if r.get("eventSource") == "kms.amazonaws.com")
    files.insert(len(files) // 3, ("AWSLogs/chaos/bad_records.json.gz", _bad_cloudtrail_file(kms)))
    vault = next(s for s in generate_all(estate) if s.source == "vault.audit")
    vault_log = root / "vault" / "audit.log"
    vault_log.parent.mkdir(parents=True)
    lines = b"".join(vault.files.values()).splitlines(keepends=True)
    # unusable lines among the real ones: truncated JSON, invalid UTF-8, a JSON array
    lines[10:10] = [b'{"type":"request","request":{"id":\n', b"\xff\xfe not utf-8\n", b"[1,2,3]\n"]
    vault_log.write_bytes(b"".join(lines))
    return files, vault_log


def _offline(inbox: Path, vault_log: Path) -> tuple[list, OfflineStats, OfflineStats]:
    ct, vs = OfflineStats(), OfflineStats()
    events = list(read_events("aws.cloudtrail", [str(inbox)], ct)) + list(
        read_events("vault.audit", [str(vault_log)], vs)
    )
    return events, ct, vs


def _count(settings: Settings, sql: str) -> int | None:
    try:
        return int(run_query(settings, sql).to_pylist()[0]["n"])
    except (QueryError, OSError):
        return None


def run_chaos(config: ChaosConfig, home: Path) -> dict[str, Any]:
    rng = random.Random(config.seed)
    settings = Settings.from_env({"KMO_HOME": str(home / "kmo"), "KMO_KAFKA_SESSION_TIMEOUT_MS": "6000"})
    broker = EmbeddedKafka(settings)
    bootstrap = broker.start()
    topics = Topics.for_settings(settings)
    files, vault_log = _inputs(config, home)
    inbox, logs = home / "inbox", home / "logs"
    inbox.mkdir()
    logs.mkdir()
    policy = home / "policy.yaml"
    rules = ", ".join(f"{rule}: {action}" for rule, action in ENFORCED.items())
    policy.write_text(f"auto_response: {{{rules}}}\nresponse_mode: enforce\n")
    with contextlib.ExitStack() as stack:
        stack.callback(broker.stop)
        (home / "bao").mkdir()
        bao, _audit, bao_addr, _proc = stack.enter_context(run_openbao(home / "bao"))
        bao.sys.enable_secrets_engine("transit", path="transit")
        for key in {e.key.uri for e in read_events("vault.audit", [str(vault_log)]) if e.key is not None}:
            if key.startswith("vault:transit/keys/"):  # the keys the audit log names exist in this Vault
                bao.secrets.transit.create_key(name=key.rsplit("/", 1)[-1])
        env = dict(
            os.environ,
            KMO_HOME=str(settings.home),
            KMO_KAFKA_BOOTSTRAP=bootstrap,
            KMO_KAFKA_SESSION_TIMEOUT_MS="6000",
            KMO_ABSENCE_SECONDS="3600",
            KMO_WORKER_STALL_SECONDS="15",  # a worker that stops fetching exits (75) and is restarted
            KMO_SINK_STALL_SECONDS="15",  # a sink consumer that stops reading is replaced (analytics.sink_guard)
            VAULT_ADDR=f"http://{bao_addr}",
            VAULT_TOKEN="root-test",
        )
        env.pop("KMO_FAULT", None)
        second_home = home / "worker-2"  # a second worker host: same broker and group, its own state
        procs = {
            "collector-cloudtrail": Managed(
                "collector-cloudtrail", [*KMO, "ingest", "cloudtrail", str(inbox), "--watch", "0.5"], env,
                logs / "collector-cloudtrail.log",
            ),
            "collector-vault": Managed(
                "collector-vault", [*KMO, "ingest", "vault", str(vault_log)], env, logs / "collector-vault.log",
                oneshot=True,
            ),
            "sink": Managed("sink", [*KMO, "sink", "--batch-max", "500"], env, logs / "sink.log"),
            "worker": Managed("worker", [*KMO, "worker", "--loglevel", "info"], env, logs / "worker.log"),
            "responder": Managed(
                "responder", [*KMO, "responder", "--policy", str(policy)], env, logs / "responder.log"
            ),
        }  # fmt: skip
        worker_2 = Managed(
            "worker-2",
            [*KMO, "worker", "--loglevel", "info"],
            env | {"KMO_HOME": str(second_home)},
            logs / "worker-2.log",
            wanted=False,
        )
        stack.callback(lambda: [p.stop() for p in [*procs.values(), worker_2]])
        timeline: list[str] = []
        start = time.monotonic()

        def say(what: str) -> None:
            timeline.append(f"{time.monotonic() - start:6.1f}s {what}")

        for proc in procs.values():
            proc.start()
        fed, next_kill = 0, start + rng.uniform(*config.kill_every)
        broker_at, second_at, second_leaves = len(files) // 2, len(files) // 10, len(files) * 9 // 10
        broker_restarts = 0
        while fed < len(files):
            now = time.monotonic()
            for name, body in files[fed : fed + max(1, int(config.files_per_second / 4))]:
                path = inbox / name
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name("." + path.name + ".tmp")
                tmp.write_bytes(body)
                tmp.rename(path)  # the collector never sees half a file
                fed += 1
            if fed >= second_at and not worker_2.wanted and worker_2.starts == 0:
                worker_2.wanted = True
                say("a second worker joins the group")
            if fed >= second_leaves and worker_2.wanted and worker_2.starts:
                worker_2.stop()
                say("the second worker leaves the group (SIGTERM)")
            if fed >= broker_at and broker_restarts == 0:
                broker.kill()
                say("broker SIGKILLed")
                time.sleep(rng.uniform(1.0, 3.0))
                broker.start()
                broker_restarts += 1
                say("broker started again")
            if now >= next_kill:
                victim = procs[rng.choice(sorted(procs))]
                if victim.kill(now, rng.uniform(*config.down_for)):
                    say(f"{victim.name} SIGKILLed")
                next_kill = now + rng.uniform(*config.kill_every)
            for proc in [*procs.values(), worker_2]:
                proc.tend(time.monotonic())
            time.sleep(0.25)
        say(f"all {len(files)} delivery files written; no more kills")

        events, ct_stats, vault_stats = _offline(inbox, vault_log)
        expected_uids = {e.uid for e in events}
        result = replay(events, policy=load_policy(str(policy)), inventory=Inventory())
        expected_findings = {f.uid: f for f in result.findings}
        deadline = time.monotonic() + config.catch_up_timeout
        caught_up, waiting_for = False, "events in DuckDB"
        while time.monotonic() < deadline and not caught_up:
            for proc in procs.values():
                proc.tend(time.monotonic())
            was = waiting_for
            waiting_for = _waiting_for(settings, bootstrap, topics, len(expected_uids), set(expected_findings))
            if (waiting_for or "").split(" (")[0] != (was or "").split(" (")[0]:
                say(f"waiting for {waiting_for}" if waiting_for else "nothing left to wait for")
            caught_up = waiting_for is None and procs["collector-vault"].done
            time.sleep(1.0)
        say("caught up" if caught_up else f"NOT caught up before the timeout: still waiting for {waiting_for}")
        time.sleep(2.0)  # the sink's findings batch and the responder's audit writes settle
        figures = _account(settings, bootstrap, topics, expected_uids, ct_stats, vault_stats, expected_findings, bao)
    figures |= {
        "seed": config.seed,
        "delivery_files": len(files),
        "kills": {p.name: p.killed for p in [*procs.values(), worker_2] if p.killed},
        "exits_on_their_own": {p.name: p.died for p in [*procs.values(), worker_2] if p.died},
        "last_words": {p.name: p.last_words for p in [*procs.values(), worker_2] if p.last_words},
        "starts": {p.name: p.starts for p in [*procs.values(), worker_2]},
        "broker_restarts": broker_restarts,
        "second_worker_batches": _batches(logs / "worker-2.log"),
        "sink_consumers_replaced": _count_lines(logs / "sink.log", "replacing the sink's Kafka consumer"),
        "caught_up": caught_up,
        "seconds": round(time.monotonic() - start, 1),
        "timeline": timeline,
    }
    return figures


def _waiting_for(settings: Settings, bootstrap: str, topics: Topics, events: int, findings: set[str]) -> str | None:
    """What the pipeline has not yet done (None: everything): checked in the order the data flows."""
    landed = _count(settings, "SELECT count(DISTINCT uid) AS n FROM events")
    if landed != events:
        return f"events in DuckDB ({landed} of {events})"
    for group, topic in (("kmo-sink", topics.events), ("kmo-worker", topics.events)):
        if lag := group_lag(bootstrap, group, topic.name):
            return f"{group} on {topic.name} (lag {lag})"
    if missing := findings - set(read_findings(settings)):
        return f"{len(missing)} findings on the findings topic"
    for group in ("kmo-responder", "kmo-sink"):
        if lag := group_lag(bootstrap, group, topics.findings.name):
            return f"{group} on {topics.findings.name} (lag {lag})"
    return None


def _count_lines(log: Path, *texts: str) -> int:
    """Lines of ``log`` holding any of ``texts`` (0 for a process that never started)."""
    if not log.exists():
        return 0
    return sum(any(t in line for t in texts) for line in log.read_text(errors="replace").splitlines())


def _batches(worker_log: Path) -> int:
    """Batches a worker processed (from its log at level info): the second one's show that the
    rebalance gave it partitions."""
    return _count_lines(worker_log, "by key:", "by principal:")


def _account(
    settings: Settings,
    bootstrap: str,
    topics: Topics,
    expected_uids: set[str],
    ct_stats: OfflineStats,
    vault_stats: OfflineStats,
    expected_findings: dict[str, Any],
    bao: hvac.Client,
) -> dict[str, Any]:
    rows = run_query(settings, "SELECT uid FROM events").to_pylist()
    in_db = Counter(r["uid"] for r in rows)
    letters = [r for r in read_all(bootstrap, topics.dlq.name) if headers(r).get("kmo-stage") == "ingest"]
    letter_origins = Counter(r.key.decode() for r in letters)
    expected_dead = {origin for origin, _ in ct_stats.dead + vault_stats.dead}
    published = read_findings(settings)
    finding_rows = Counter(r["uid"] for r in run_query(settings, "SELECT uid FROM findings").to_pylist())
    audit = AuditLog(settings.home / "actions" / "audit.jsonl").entries()
    done = Counter(
        (entry.get("trigger"), entry.get("keyId"))
        for entry in audit
        if entry.get("outcome") == "succeeded" and entry.get("operation") == "rotate"
    )
    enforced = {
        (uid, key)
        for uid, f in expected_findings.items()
        if f.rule_id in ENFORCED
        for key in f.keys
        if key.startswith("vault:")
    }
    per_key = Counter(key for _, key in enforced)
    versions = {
        key: bao.secrets.transit.read_key(name=key.rsplit("/", 1)[-1])["data"]["latest_version"] for key in per_key
    }
    records_in = ct_stats.records + vault_stats.records
    match = compare(published, list(expected_findings.values()))
    return {
        "records_in": records_in,
        "events_expected": len(expected_uids),
        "events_in_duckdb": sum(in_db.values()),
        "events_distinct": len(in_db),
        "events_missing": len(expected_uids - set(in_db)),
        "events_unexpected": len(set(in_db) - expected_uids),
        "duplicates_in_duckdb": sum(n - 1 for n in in_db.values()),
        "skipped_not_key_records": ct_stats.skipped + vault_stats.skipped,
        "dead_letters_expected": len(expected_dead),
        "dead_letters_distinct": len(letter_origins),
        "dead_letters_missing": len(expected_dead - set(letter_origins)),
        "dead_letters_unexpected": len(set(letter_origins) - expected_dead),
        "dead_letter_copies_resent": sum(n - 1 for n in letter_origins.values()),
        "findings_expected": len(expected_findings),
        "findings_published": len(published),
        "findings_missing": sorted(set(expected_findings) - set(published)),
        "findings_unexpected": sorted(set(published) - set(expected_findings)),
        # principal-window counts follow the stream's order (kmo.demo.stream_check.Comparison says
        # why); every other count must be replay's
        "findings_count_differs": match.count_differs,
        "findings_count_differs_order_dependent": match.order_dependent,
        "findings_rows_in_duckdb": sum(finding_rows.values()),
        "findings_duplicated_in_duckdb": sum(n - 1 for n in finding_rows.values()),
        "actions_expected": len(enforced),
        "actions_done": sum(done.values()),
        "actions_done_twice": sum(n - 1 for n in done.values() if n > 1),
        "actions_missing": len(enforced - set(done)),
        "key_versions": versions,
        "key_versions_expected": {key: 1 + n for key, n in per_key.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=ChaosConfig.seed)
    parser.add_argument("--days", type=int, default=ChaosConfig.days)
    parser.add_argument("--home", type=Path, help="keep everything here (processes' logs, warehouse) for a look after")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kmo-chaos-") as tmp:
        home = args.home or Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        figures = run_chaos(ChaosConfig(seed=args.seed, days=args.days), home)
    for line in figures.pop("timeline"):
        print(line)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
