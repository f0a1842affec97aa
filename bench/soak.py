"""Soak: every component running at once, fed at a steady rate, for minutes (``make soak``).

    python bench/soak.py [--rate 300] [--seconds 180]

A fresh ``KMO_HOME`` with its own embedded broker; ``kmo ingest cloudtrail --watch 1`` over a
directory this script writes one CloudTrail file into every second (``--rate`` records, unique ids,
current times, realistic KMS calls from the demo estate); ``kmo sink`` and ``kmo worker`` run as
separate processes. Every 5 s it samples each process's resident memory and each consumer group's
lag. At the end it stops writing, waits for the pipeline to catch up, and accounts for every record:
events in DuckDB (each once) plus dead letters must equal records written. Prints a table and one
JSON line, and writes bench/results/soak.json. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from analytics.query import run_query
from kmo.demo.estate import Estate
from kmo.kafka import group_lag
from kmo.settings import Settings
from kmo.topics import Topics
from streams.broker.embedded import EmbeddedKafka


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=300, help="records per second")
    parser.add_argument("--seconds", type=int, default=180)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="kmo-soak-"))
    settings = Settings.from_env(dict(os.environ, KMO_HOME=str(home)))
    broker = EmbeddedKafka(settings)
    bootstrap = broker.start()
    env = dict(os.environ, KMO_HOME=str(home), KMO_KAFKA_BOOTSTRAP=bootstrap, KMO_KAFKA_SESSION_TIMEOUT_MS="6000")
    inbox = home / "inbox"
    inbox.mkdir()
    templates = [r for r in Estate(seed=11, days=2).generate() if r.get("eventSource") == "kms.amazonaws.com"][:2000]
    kmo = [sys.executable, "-m", "kmo.cli"]
    procs = {
        "collector": subprocess.Popen([*kmo, "ingest", "cloudtrail", str(inbox), "--watch", "1"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        "sink": subprocess.Popen([*kmo, "sink"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        "worker": subprocess.Popen([*kmo, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    }  # fmt: skip
    topics = Topics.for_settings(settings)
    samples: list[dict] = []
    written = 0
    start = time.monotonic()
    try:
        second = 0
        while time.monotonic() - start < args.seconds:
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            records = []
            for i in range(args.rate):
                rec = dict(templates[(written + i) % len(templates)])
                rec["eventID"], rec["eventTime"] = str(uuid.uuid4()), now
                records.append(rec)
            tmp = inbox / f".{second}.tmp"
            tmp.write_bytes(gzip.compress(json.dumps({"Records": records}).encode(), mtime=0))
            tmp.rename(inbox / f"soak_{second:06d}.json.gz")  # the collector never sees half a file
            written += len(records)
            second += 1
            if second % 5 == 0:
                samples.append(
                    {
                        "t": round(time.monotonic() - start),
                        **{f"rss_{n}_mb": rss_mb(p.pid) for n, p in procs.items()},
                        # in messages (offsets): up to 100 events each on kmo.events.v2
                        "sink_lag": group_lag(bootstrap, "kmo-sink", topics.events.name),
                        "worker_lag": group_lag(bootstrap, "kmo-worker", topics.events.name),
                    }
                )
                print(json.dumps(samples[-1]), flush=True)
            time.sleep(max(0.0, start + second - time.monotonic()))
        deadline = time.monotonic() + 300
        landed = 0
        while time.monotonic() < deadline:
            landed = run_query(settings, "SELECT count(*) AS n FROM events").to_pylist()[0]["n"]
            if landed >= written and group_lag(bootstrap, "kmo-worker", topics.events.name) == 0:
                break
            time.sleep(2)
        caught_up = time.monotonic() - start - args.seconds
        counts = run_query(settings, "SELECT count(*) AS n, count(DISTINCT uid) AS u FROM events").to_pylist()[0]
        dead = group_lag(bootstrap, "kmo-soak-count", topics.dlq.name)  # a group that never commits: the topic's size
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        broker.stop()
    first, last = samples[0], samples[-1]
    summary = {
        "rate_per_s": args.rate,
        "seconds": args.seconds,
        "records_written": written,
        "events_in_duckdb": counts["n"],
        "distinct_events": counts["u"],
        "dead_letters": dead,
        "lost": written - counts["u"] - dead,
        "duplicates": counts["n"] - counts["u"],
        "caught_up_after_s": round(caught_up, 1),
        "max_sink_lag": max(s["sink_lag"] or 0 for s in samples),
        "max_worker_lag": max(s["worker_lag"] or 0 for s in samples),
        "warehouse_memory_mb": settings.warehouse_memory_mb,
        **{f"{k}_first": first[k] for k in first if k.startswith("rss_")},
        **{f"{k}_last": last[k] for k in last if k.startswith("rss_")},
        **{f"{k}_max": max(s[k] or 0 for s in samples) for k in first if k.startswith("rss_")},
        # the second half against the first: a flat process gains little once warmed up
        **{
            f"{k}_gain_second_half": round((last[k] or 0) - (samples[len(samples) // 2][k] or 0), 1)
            for k in first
            if k.startswith("rss_")
        },
    }
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "soak.json").write_text(json.dumps({"summary": summary, "samples": samples}, indent=2))
    for key, value in summary.items():
        print(f"{key:<28} {value}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
