"""``kmo alerts``: what the findings topic says now. Findings are re-published under the same uid
as they grow, so this shows the latest state of each uid once (and, with --follow, updates)."""

from __future__ import annotations

import sys
import time

import orjson
from kafka import TopicPartition

from analytics.query import printable
from kmo.kafka import make_consumer, resolve_bootstrap
from kmo.settings import Settings
from kmo.topics import Topics
from streams.findings import Severity


def follow_alerts(settings: Settings, *, follow: bool = False, min_severity: str = "low", as_json: bool = False) -> int:
    floor = Severity[min_severity.upper()]
    topic = Topics.for_settings(settings).findings.name
    consumer = make_consumer(resolve_bootstrap(settings), None)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not tps:
            print("kmo: no findings topic yet (is a worker running?)", file=sys.stderr)
            return 0
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        latest: dict[str, dict] = {}
        shown: dict[str, int] = {}
        while True:
            batch = consumer.poll(timeout_ms=1000)
            for recs in batch.values():
                for rec in recs:
                    try:
                        doc = orjson.loads(rec.value)
                        latest[doc["finding_info"]["uid"]] = doc
                    except (ValueError, KeyError, TypeError):
                        continue
            caught_up = all(consumer.position(tp) >= end for tp, end in consumer.end_offsets(tps).items())
            if caught_up or follow:
                for uid, doc in sorted(latest.items(), key=lambda kv: kv[1]["time"]):
                    if doc["severity_id"] < floor or shown.get(uid) == doc["count"]:
                        continue
                    shown[uid] = doc["count"]
                    if as_json:
                        print(orjson.dumps(doc).decode())
                    else:
                        sev = Severity(doc["severity_id"]).name.lower()
                        rule = doc["finding_info"]["analytic"]["uid"]
                        print(
                            printable(f"{doc['time_dt'][:19]}  {sev:<8} {rule:<36} x{doc['count']:<5} {doc['message']}")
                        )
                sys.stdout.flush()
                if not follow:
                    return 0
                time.sleep(0.5)
    finally:
        consumer.close()
