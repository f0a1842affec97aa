"""The demo's stream step: run ``kmo worker`` over the events already in Kafka until it has caught
up, then compare the findings it published with what ``kmo detect`` found in the same files."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from kafka import TopicPartition

from kmo.kafka import make_consumer, resolve_bootstrap
from kmo.settings import Settings
from kmo.topics import Topics
from streams.findings import Finding
from streams.forwarding import forwarded_topic
from streams.rules import load_rules


def caught_up(consumer: Any, tps: list[TopicPartition], events_topic: str) -> bool:
    """Has the worker committed everything on both its input topics, the forwarded batches included?

    The events topic first: Faust flushes its producer before it commits, so once the worker has
    committed the end of the events topic, everything it forwarded from them is on the principal
    topic. Only then are that topic's end offsets read, and its commits compared with them. (Ends
    read before that commit could miss forwarded records still in flight, as a CI flake once showed;
    and the forwarded topic holds batches, so its size says nothing about the events' count.)
    """
    events = [tp for tp in tps if tp.topic == events_topic]
    forwarded = [tp for tp in tps if tp.topic != events_topic]
    for group in (events, forwarded):
        ends = consumer.end_offsets(group)
        if any((consumer.committed(tp) or 0) < end for tp, end in ends.items()):
            return False
    return True


def _wait_until_quiet(consumer: Any, topic: str, *, deadline: float, quiet_checks: int = 16) -> None:
    """Faust flushes its producer before it commits, so committed input means written findings; the
    absence timer and the model's idle flush (4 s of quiet, checked every second), though, publish on
    their own clocks. Wait until the findings topic has not moved for 8 s."""
    tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
    last, still = None, 0
    while tps and still < quiet_checks and time.monotonic() < deadline:
        ends = consumer.end_offsets(tps)
        still = still + 1 if ends == last else 0
        last = ends
        time.sleep(0.5)


def run_worker_until_caught_up(
    settings: Settings, inventory: Path, expected: set[str] | frozenset[str] = frozenset(), timeout: float = 300.0
) -> tuple[dict, float]:
    """Start the worker, wait for it to commit the end of both its input topics (and, within the
    timeout, for the ``expected`` finding uids: the model scores its hours once the stream is quiet,
    which is after the input is committed), stop it. Returns the latest state of every finding it
    published and the seconds it took."""
    bootstrap = resolve_bootstrap(settings)
    topics = Topics.for_settings(settings)
    by_principal = forwarded_topic(settings).name
    env = dict(
        os.environ,
        KMO_HOME=str(settings.home),
        KMO_TOPIC_PREFIX=settings.topic_prefix,
        KMO_ABSENCE_SECONDS="3600",
        # a backfill arrives out of time order: close model hours only when the stream goes idle
        KMO_MODEL_GRACE_SECONDS=str(3650 * 86400),
        KMO_MODEL_IDLE_SECONDS="4",
        KMO_INVENTORY=str(inventory),
    )
    if settings.kafka_bootstrap:
        env["KMO_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
    start = time.monotonic()
    log_path = settings.home / "worker.log"  # kept: a mismatch is diagnosed from the worker's own account
    log_file = log_path.open("ab")
    worker = subprocess.Popen(
        [sys.executable, "-m", "kmo.cli", "worker", "--loglevel", "info"],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    probe = make_consumer(bootstrap, f"{settings.topic_prefix}kmo-worker")
    try:
        tps: list[TopicPartition] = []
        while time.monotonic() - start < timeout:
            if len(tps) < 2 * settings.events_partitions:  # the worker creates the forwarding topic
                probe.topics()  # refresh metadata
                parts = [(t, probe.partitions_for_topic(t)) for t in (topics.events.name, by_principal)]
                tps = [TopicPartition(t, p) for t, ps in parts if ps for p in ps]
            if len(tps) == 2 * settings.events_partitions and caught_up(probe, tps, topics.events.name):
                break
            time.sleep(0.5)
        while expected and time.monotonic() - start < timeout and not expected <= set(read_findings(settings)):
            time.sleep(1.0)
        _wait_until_quiet(probe, topics.findings.name, deadline=start + timeout)
        elapsed = time.monotonic() - start
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        log_file.close()
        probe.close()
    return read_findings(settings), elapsed


def read_findings(settings: Settings) -> dict[str, dict]:
    """The latest state of every finding on the findings topic, by uid."""
    topic = Topics.for_settings(settings).findings.name
    findings: dict[str, dict] = {}
    reader = make_consumer(resolve_bootstrap(settings), None)
    try:
        tps = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or []]
        reader.assign(tps)
        reader.seek_to_beginning(*tps)
        ends = reader.end_offsets(tps)
        while any(reader.position(tp) < ends[tp] for tp in tps):
            for recs in reader.poll(timeout_ms=1000).values():
                for rec in recs:
                    doc = orjson.loads(rec.value)
                    findings[doc["finding_info"]["uid"]] = doc
    finally:
        reader.close()
    return findings


@dataclass(frozen=True)
class Comparison:
    """The stream's findings against replay's, absence findings left out (the worker checks those on
    a timer against the wall clock, replay as of the newest event).

    ``order_dependent``: findings of principal-scoped window rules whose count differs. Those rules
    see a principal's events merged from several key partitions, in an interleaving that differs
    from the files' order (and that a crash or rebalance changes). Each event counts into its own
    window (streams.rules.helpers.window_count), so which windows reach a threshold, and so the
    findings and their uids, do not follow that order; but a finding's count is the number of its
    window's events that came after every threshold was met (ten errors *and* three keys), and which
    events those are does. Every other count must be replay's: ``count_differs``.
    """

    same: int
    only_stream: list[str]
    only_replay: list[str]
    count_differs: list[str]
    order_dependent: list[str]

    @property
    def exact(self) -> bool:
        """Nothing invented, nothing missed, and no count off but the order-dependent ones."""
        return not (self.only_stream or self.only_replay or self.count_differs)


def rule_scopes() -> dict[str, str]:
    """Each rule's id and scope (event, key, principal, absence)."""
    return {module.RULE.id: module.RULE.scope for module in load_rules()}


def compare(stream: dict[str, dict], replayed: list[Finding]) -> Comparison:
    scopes = rule_scopes()
    expected = {f.uid: f for f in replayed if f.evidence}
    got = {u: d["count"] for u, d in stream.items() if d["finding_info"]["related_events"]}
    differing = [f for u, f in expected.items() if u in got and got[u] != f.count]
    return Comparison(
        same=sum(1 for u, f in expected.items() if got.get(u) == f.count),
        only_stream=sorted(set(got) - set(expected)),
        only_replay=sorted(set(expected) - set(got)),
        count_differs=sorted(f.uid for f in differing if scopes.get(f.rule_id) != "principal"),
        order_dependent=sorted(f.uid for f in differing if scopes.get(f.rule_id) == "principal"),
    )
