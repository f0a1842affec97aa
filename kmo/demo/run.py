"""``kmo demo`` / ``make demo``: a synthetic estate through the real pipeline, end to end.

estate -> CloudTrail .json.gz files (AWSLogs layout) -> ``kmo ingest cloudtrail`` -> Kafka
(embedded Apache Kafka unless ``KMO_KAFKA_BOOTSTRAP`` is set) -> ``kmo sink`` -> DuckDB, then a
summary and three queries to try. The warehouse stays for ``kmo query``.

The demo owns the state it creates: it resets ``$KMO_HOME`` only when that holds a previous demo
(or nothing), never someone's real warehouse.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from analytics.query import render, run_query
from analytics.sink import WarehouseSink
from ingest.collect import collect
from kmo.demo.cloudtrail_files import render_files, write_files
from kmo.demo.estate import Estate
from kmo.demo.other_sources import generate_all
from kmo.demo.stream_check import compare, run_worker_until_caught_up
from kmo.settings import ConfigError, Settings
from kmo.topics import Topics
from streams.broker.embedded import EmbeddedKafka

MARKER = "DEMO_HOME"

EXAMPLE_QUERIES = (
    (
        "Which keys were used most, by how many principals?",
        "SELECT key_uri, sum(events) AS uses, max(principals) AS max_principals_per_day "
        "FROM usage_daily GROUP BY key_uri ORDER BY uses DESC LIMIT 5",
    ),
    (
        "Who decrypted with a key between 00:00 and 05:00 UTC, and how often?",
        "SELECT actor_principal, key_uri, count(*) AS decrypts FROM events "
        "WHERE op = 'decrypt' AND hour(time AT TIME ZONE 'UTC') < 5 "
        "GROUP BY ALL ORDER BY decrypts DESC LIMIT 5",
    ),
    (
        "What lifecycle changes happened, by whom?",
        "SELECT time, operation, actor_principal, key_uri, success FROM events "
        "WHERE class_uid = 3004 ORDER BY time DESC LIMIT 8",
    ),
)


def _sink_until_idle(settings: Settings) -> Any:
    sink = WarehouseSink(settings)
    try:
        return sink.run(until_idle=2.0)
    finally:
        sink.close()


def _is_model(doc: dict[str, Any]) -> bool:
    return str(doc["finding_info"]["analytic"]["uid"]).startswith("model.")


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _reset(settings: Settings) -> None:
    home = settings.home
    if home.exists() and any(home.iterdir()) and not (home / MARKER).exists():
        raise ConfigError(
            f"{home} holds state that is not a previous demo's; set KMO_HOME to an empty directory to run the demo"
        )
    EmbeddedKafka(settings).stop()
    for name in ("kafka", "state", "quarantine", "demo", "actions", "sink.sock"):
        path = home / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    settings.warehouse.unlink(missing_ok=True)
    Path(f"{settings.warehouse}.wal").unlink(missing_ok=True)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    (home / MARKER).write_text("this directory is managed by `kmo demo`\n")


def detect_demo(out: Path, others: list) -> tuple[Any, Any]:
    """Replay every demo source through the detection engine with the demo inventory; score it."""
    from ingest.offline import read_events
    from streams.inventory import load_inventory
    from streams.policy import load_policy
    from streams.replay import replay
    from streams.score import score

    def events():
        yield from read_events("aws.cloudtrail", [str(out / "cloudtrail")])
        for other in others:
            yield from read_events(other.source, [str(out / other.directory)])

    result = replay(events(), policy=load_policy(), inventory=load_inventory(out / "inventory.json"))
    incidents = json.loads((out / "incidents.json").read_text())
    return result, score(result.findings, incidents, result.events)


def train_model(settings: Settings) -> list[Any]:
    """``kmo model train`` on what landed (unsupervised: the incident labels are not used), and the
    model's own batch findings over the same hours, for the stream check to compare with."""
    from datetime import timedelta

    from analytics import anomaly_model as am

    first, last = run_query(settings, "SELECT min(time) AS a, max(time) AS b FROM events").to_pylist()[0].values()
    rows = am.features_from_warehouse(settings, first, last + timedelta(seconds=1))
    model = am.train(rows)
    am.save(model, settings.home / "models", window=(first, last))
    findings = model.findings(rows)
    _say(
        f"      kmo model train: isolation forests over {len(rows)} key-principal-hours "
        f"({', '.join(f'{p} {n}' for p, n in model.meta['rows_by_provider'].items())}); "
        f"{len(findings)} anomalous hours in batch scoring"
    )
    return findings


def compliance_reports(settings: Settings, start: Any, newest: Any) -> list[dict[str, Any]]:
    """Every framework's report over the demo's period, from what landed in the warehouse."""
    from datetime import timedelta

    from analytics.compliance_report import FRAMEWORKS, Evidence, controls
    from analytics.report_html import write_report
    from streams.policy import load_policy

    evidence = Evidence(settings, start, newest + timedelta(seconds=1), load_policy())
    out = settings.home / "reports" / "demo"
    return [write_report(out, f, evidence, controls(evidence, f)) for f in FRAMEWORKS]


def propose_responses(settings: Settings, findings: list[Any]) -> list[dict[str, Any]]:
    """The responder in propose mode, for every rule whose recommended action is rotate or disable:
    an incident becomes a pending, audited action a human approves by running its command."""
    from actions.audit_log import AuditLog
    from actions.responder import Responder
    from streams.findings import Action
    from streams.policy import policy_with
    from streams.rules import load_rules

    auto = {m.RULE.id: str(m.RULE.action) for m in load_rules() if m.RULE.action in (Action.ROTATE, Action.DISABLE)}
    policy = policy_with({"auto_response": auto, "response_mode": "propose"})
    responder = Responder(policy, lambda _provider: None, AuditLog(settings.home / "actions" / "audit.jsonl"))
    return [e for f in findings for e in responder.handle(f.to_ocsf()) if e["outcome"] == "proposed"]


def run_demo(settings: Settings, *, seed: int = 7, days: int = 21, keep_broker: bool = False) -> int:
    t_start = time.monotonic()
    if settings.kafka_bootstrap and not settings.topic_prefix:
        # An external Kafka may hold earlier runs: give this run its own topics.
        settings = settings.with_(topic_prefix=f"demo-{int(time.time())}.")
    _reset(settings)
    out = settings.home / "demo"

    _say(f"[1/7] building a synthetic estate (seed {seed}, {days} days)")
    estate = Estate(seed=seed, days=days)
    records = estate.generate()
    files = render_files(records)
    size = write_files(out / "cloudtrail", files)
    others = generate_all(estate)
    for other in others:
        size += write_files(out / other.directory, other.files)
    (out / "inventory.json").write_text(json.dumps(estate.inventory(), indent=2))
    (out / "incidents.json").write_text(json.dumps([i.as_dict() for i in estate.incidents], indent=2))
    _say(
        f"      AWS: {len(estate.keys)} keys in {len({k.account for k in estate.keys})} accounts, "
        f"{len(records)} CloudTrail records in {len(files)} files; "
        + ", ".join(f"{o.source}: {o.records} records" for o in others)
        + f"; {size / 1e6:.1f} MB on disk, {len(estate.incidents)} seeded incidents -> {out}"
    )

    broker = None
    if settings.kafka_bootstrap:
        _say(f"[2/7] using Kafka at {settings.kafka_bootstrap} (topics prefixed {settings.topic_prefix!r})")
    else:
        _say("[2/7] starting the embedded Apache Kafka broker")
        broker = EmbeddedKafka(settings)
        t = time.monotonic()
        bootstrap = broker.start()
        _say(f"      ready at {bootstrap} in {time.monotonic() - t:.1f}s")
    try:
        _say("[3/7] kmo ingest: every source")
        for source, directory in [("aws.cloudtrail", "cloudtrail"), *((o.source, o.directory) for o in others)]:
            summary = collect(settings, source, [str(out / directory)])
            _say(
                f"      {source:<15} {summary.inputs:>5} files, {summary.records:>6} records -> {summary.events:>6} "
                f"events (+{summary.derived_events} derived), {summary.skipped} skipped, "
                f"{summary.dead_lettered} dead-lettered in {summary.seconds:.1f}s"
            )
        _say("[4/7] kmo sink (until caught up)")
        stats = _sink_until_idle(settings)
        _say(
            f"      {stats.inserted} events written to {settings.warehouse} in {stats.batches} batches "
            f"({stats.duplicates} duplicates ignored)"
        )
        model_findings = train_model(settings)
    except BaseException:
        if broker is not None:
            broker.stop()
        raise

    _say("[5/7] kmo detect over the same files (no broker)")
    t = time.monotonic()
    result, scored = detect_demo(out, others)
    _say(
        f"      {result.events} events -> {len(result.findings)} findings in {time.monotonic() - t:.1f}s; "
        f"caught {len(scored.caught)}/{scored.incidents} seeded incidents, "
        f"{scored.fp_per_100k:.2f} false positives per 100k benign events"
    )
    (out / "findings.jsonl").write_text("".join(orjson.dumps(f.to_ocsf()).decode() + "\n" for f in result.findings))
    (out / "detection-score.json").write_text(json.dumps(scored.as_dict(), indent=2))
    proposals = propose_responses(settings, result.findings)
    _say(
        f"      kmo responder (propose mode) over those findings: {len(proposals)} pending actions for a human "
        f"in {settings.home / 'actions' / 'pending'}"
        + (f", e.g. `{proposals[0]['command']}` ({proposals[0]['actor']})" if proposals else "")
    )

    if broker is not None or settings.kafka_bootstrap:
        _say("[6/7] kmo worker (Faust) over the same events in Kafka, until caught up")
        expected = {f.uid for f in result.findings if f.evidence} | {f.uid for f in model_findings}
        stream, seconds = run_worker_until_caught_up(settings, out / "inventory.json", expected)
        match = compare({u: d for u, d in stream.items() if not _is_model(d)}, result.findings)
        _say(
            f"      {len(stream)} findings on {Topics.for_settings(settings).findings.name} in {seconds:.0f}s; "
            f"{match.same} identical to kmo detect's, {len(match.only_stream)} only in the stream, "
            f"{len(match.only_replay)} only in replay (absence findings aside)"
            + (f", {len(match.count_differs)} with another count" if match.count_differs else "")
            + (
                f", {len(match.order_dependent)} principal-window counts that follow the stream's order"
                if match.order_dependent
                else ""
            )
        )
        live = {u for u, d in stream.items() if _is_model(d)}
        batch = {f.uid for f in model_findings}
        _say(
            f"      the learned model, live in the worker: {len(live)} anomalous hours; "
            f"{len(live & batch)} identical to batch scoring, {len(live - batch)} only live, "
            f"{len(batch - live)} only in batch"
        )
        from actions.audit_shipper import ship

        shipped = ship(settings)
        stats = _sink_until_idle(settings)
        _say(
            f"      kmo ship-audit + kmo sink: {shipped} orchestrator audit entries shipped; findings and actions "
            f"stored ({stats.consumed} messages)"
        )
    if broker is not None and not keep_broker:
        broker.stop()

    _say("[7/7] what landed")
    landed = run_query(
        settings,
        "SELECT count(*) AS events, count(DISTINCT key_uri) AS keys, "
        "count(DISTINCT actor_principal) AS principals, min(time) AS first, max(time) AS last FROM events",
    )
    print(render(landed, "table"))
    print()
    by_source = (
        "SELECT source, count(*) AS events, count(DISTINCT key_uri) AS keys, "
        "count(*) FILTER (WHERE NOT success) AS failures, count(DISTINCT op) AS operations "
        "FROM events GROUP BY source ORDER BY events DESC"
    )
    print(render(run_query(settings, by_source), "table"))
    print()
    health = "SELECT source, last_status, last_event_time, events_reported FROM source_health ORDER BY source"
    print(render(run_query(settings, health), "table"))
    print()
    if broker is not None or settings.kafka_bootstrap:
        from analytics.saved_queries import run_saved

        print("kmo query --saved findings_summary --param since=2000-01-01T00:00:00Z")
        print(render(run_saved(settings, "findings_summary", {"since": "2000-01-01T00:00:00Z"}), "table"))
        print()
    print(f"Seeded incidents (ground truth in {out / 'incidents.json'}) and the rules that caught them:")
    for inc in estate.incidents:
        rules = ", ".join(scored.by_incident.get(inc.id, [])) or "MISSED"
        print(f"  {inc.id} {inc.kind:<36} {len(inc.event_uids):>4} events  {rules}")
    print(
        f"  recall {scored.recall:.0%}; false positives: {len(scored.false_positives)} "
        f"({scored.fp_per_100k:.2f} per 100k benign events); findings in {out / 'findings.jsonl'}"
    )
    print()
    reports = compliance_reports(settings, estate.start, result.newest)
    print("Compliance reports over the demo period (kmo report; JSON, HTML with charts, CSV evidence):")
    for w in reports:
        print(f"  {w['framework']:<11} {'compliant' if w['compliant'] else 'not compliant':<14} {w['html']}")
    print()
    print("Try these (the warehouse stays in place; `kmo query --list-saved` lists the saved questions):")
    for title, sql in EXAMPLE_QUERIES:
        print(f'  # {title}\n  kmo query "{sql}"\n')
    if broker is not None and keep_broker:
        print(f"The embedded broker is still running ({broker.bootstrap()}); stop it with `kmo broker stop`.")
    print(f"demo finished in {time.monotonic() - t_start:.1f}s")
    return 0
