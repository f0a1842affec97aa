"""The ``kmo`` command line. Every subcommand is a thin shell over a library function.

Exit codes: 0 success; 1 the work ran but part of it failed (an unreadable input, a refused
query); 2 the configuration or the command line is wrong.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from actions.backends.base import ALGORITHMS
from actions.request import frameworks
from ingest.parsers import CLI_SOURCES
from kmo.settings import ConfigError, Settings

SYSTEMS = ("vault", "aws-kms", "azure-keyvault", "gcp-kms", "hsm")  # the specification's keyManagementSystem


def _print_json(obj: object) -> None:
    print(orjson.dumps(obj, option=orjson.OPT_INDENT_2, default=str).decode())


def cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    from streams.broker.embedded import EmbeddedKafka, fetch_jars

    if args.action == "fetch":
        print(fetch_jars(settings, offline=args.offline))
        return 0
    broker = EmbeddedKafka(settings, port=args.port, tls=args.tls)
    if args.action == "start":
        print(broker.start())
        if args.tls:
            tls = broker.dir / "tls"
            print(f"SSL 127.0.0.1:{broker.state.tls_port} (KMO_KAFKA_SSL_CAFILE={tls / 'ca.pem'})")
            password_file = tls / "sasl-password"
            print(
                f"SASL_SSL 127.0.0.1:{broker.state.sasl_port} (user kmo, KMO_KAFKA_SASL_PASSWORD_FILE={password_file})"
            )
    elif args.action == "stop":
        print("stopped" if broker.stop() else "not running")
    else:
        _print_json(broker.status())
    return 0


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.collect import collect
    from ingest.parsers import CLI_SOURCES as sources

    if args.follow or args.listen:
        if args.source != "vault":
            print("kmo: --follow and --listen are for `kmo ingest vault`", file=sys.stderr)
            return 2
        from ingest.collect import follow

        listen = None
        if args.listen:
            host, _, port = args.listen.rpartition(":")
            listen = (host or "127.0.0.1", int(port))
        summary = follow(settings, sources[args.source], args.follow or "", _stop_on_signal(), listen=listen)
        print(json.dumps(summary.as_dict()), file=sys.stderr)
        return 0
    if args.project and args.source != "gcp":
        print("kmo: --project is for `kmo ingest gcp` (the live Logging API)", file=sys.stderr)
        return 2
    if not args.paths and not args.project:
        print("kmo: give files, directories or s3:// prefixes to read (or --project for gcp)", file=sys.stderr)
        return 2
    stop = _stop_on_signal() if args.watch else None
    while True:
        try:
            if args.project:
                from ingest.collect import collect_gcp_live
                from ingest.schema import parse_timestamp

                since = parse_timestamp(args.since) if args.since else None
                summary = collect_gcp_live(settings, args.project, since=since)
            else:
                summary = collect(
                    settings,
                    sources[args.source],
                    args.paths,
                    show_progress=False if args.no_progress else None,
                    batch_records=args.batch_records,
                )
        except Exception as exc:
            if stop is None or not isinstance(exc, _broker_errors()):
                raise
            # --watch: the next pass resumes from the last checkpoint, which never runs ahead of Kafka
            print(f"kmo: {_broker_trouble(exc)}; trying again in {args.watch:g} s", file=sys.stderr)
            if stop.wait(args.watch):
                return 0
            continue
        if args.json:
            _print_json(summary.as_dict())
        else:
            print(
                f"{summary.source}: {summary.inputs} input(s) ({summary.inputs_already_done} already done), "
                f"{summary.records} records -> {summary.events} events, {summary.skipped} skipped "
                f"(not key-related), {summary.dead_lettered} dead-lettered, in {summary.seconds:.1f}s",
                file=sys.stderr,
            )
        for name, reason in summary.unreadable:
            print(f"kmo: could not read {name}: {reason}", file=sys.stderr)
        if stop is None:
            return 0 if summary.ok else 1
        if stop.wait(args.watch):
            return 0


def _broker_errors() -> tuple[type[BaseException], ...]:
    """Kafka away or refusing writes: a clean message and exit 3 (a --watch collector tries again).
    Imported only when something failed: most commands never load the Kafka client."""
    from kafka.errors import KafkaError

    from ingest.runner import ProduceError
    from kmo.kafka import KafkaUnavailable

    return (KafkaError, ProduceError, KafkaUnavailable)


def _broker_trouble(exc: BaseException) -> str:
    return (
        f"Kafka is unreachable or refused a write ({type(exc).__name__}: {exc}); nothing after the last "
        "checkpoint or commit counts as done, so running again resumes without loss"
    )


def _stop_on_signal():  # -> threading.Event
    """An event set by SIGTERM/SIGINT, so a long-running command stops between passes."""
    import signal
    import threading

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def cmd_sink(args: argparse.Namespace, settings: Settings) -> int:
    from analytics.sink import run_sink
    from kmo.gc_tuning import tune_for_streaming

    tune_for_streaming()
    stats = run_sink(settings, until_idle=args.until_idle, batch_max=args.batch_max)
    _print_json(stats.as_dict())
    return 0


def cmd_query(args: argparse.Namespace, settings: Settings) -> int:
    """Ad-hoc read-only SQL with ``?`` parameters, or a saved query with named ``--param k=v``."""
    from analytics.query import QueryError, render, run_query
    from analytics.saved_queries import SavedQueryError, load_all, run_saved

    if args.list_saved:
        for query in load_all().values():
            params = " ".join(f"{p.name}=<{p.type}>" for p in query.params)
            print(f"{query.name}  {params}\n    {query.answers}")
        return 0
    try:
        if args.saved:
            pairs = [p.partition("=") for p in args.param or ()]
            if any(not sep for _k, sep, _v in pairs):
                raise SavedQueryError("saved-query parameters are given as --param name=value")
            table = run_saved(settings, args.saved, {k: v for k, _sep, v in pairs})
        elif args.sql:
            table = run_query(settings, args.sql, args.param or ())
        else:
            print("kmo query: give SQL, --saved NAME or --list-saved", file=sys.stderr)
            return 2
    except SavedQueryError as exc:
        print(f"kmo query: {exc}", file=sys.stderr)
        return 2
    except QueryError as exc:
        print(f"kmo: query failed: {exc}", file=sys.stderr)
        return 1
    print(render(table, args.format))
    return 0


def cmd_dlq(args: argparse.Namespace, settings: Settings) -> int:
    import base64

    from analytics.query import printable
    from ingest.dlq_reader import read_dead_letters

    for letter in read_dead_letters(settings, limit=args.limit):
        if args.json:
            letter["raw"] = base64.b64encode(letter["raw"] or b"").decode()
            print(orjson.dumps(letter).decode())
        else:
            where = f"[{letter['stage']}/{letter['source']}, {letter['size']} bytes]"
            print(printable(f"{letter['origin']}  {where}  {letter['reason']}"))
    return 0


def cmd_detect(args: argparse.Namespace, settings: Settings) -> int:
    from collections import Counter

    from ingest.offline import OfflineStats, read_events
    from ingest.schema import parse_timestamp
    from streams.inventory import InventoryError, load_inventory
    from streams.policy import PolicyError, load_policy
    from streams.replay import replay

    try:
        policy = load_policy(args.policy)
        inventory = load_inventory(args.inventory)
    except (PolicyError, InventoryError) as exc:
        print(f"kmo: {exc}", file=sys.stderr)
        return 2
    stats = OfflineStats()
    now = parse_timestamp(args.now) if args.now else None
    result = replay(
        read_events(CLI_SOURCES[args.source], args.paths, stats), policy=policy, inventory=inventory, now=now
    )
    for finding in result.findings:
        print(orjson.dumps(finding.to_ocsf()).decode())
    by_rule = Counter(f.rule_id for f in result.findings)
    print(
        f"kmo detect: {stats.records} records -> {result.events} events, {len(stats.dead)} unparseable, "
        f"{len(result.findings)} findings" + "".join(f"\n  {n:>5}  {rule}" for rule, n in by_rule.most_common()),
        file=sys.stderr,
    )
    for error in result.errors[:20]:
        print(f"kmo: rule {error.rule_id} failed on {error.event_uid}: {error.error}", file=sys.stderr)
    if result.late.uncounted:  # files given out of time order, further back than a rule's series holds
        print(
            f"kmo: {result.late.uncounted} events came after a window rule had let their window go "
            f"(at most {result.late.max_seconds} s behind its newest) and counted alone: pass the files "
            "in time order",
            file=sys.stderr,
        )
    for name, reason in stats.unreadable:
        print(f"kmo: could not read {name}: {reason}", file=sys.stderr)
    return 1 if stats.unreadable or result.errors else 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from kmo.gc_tuning import tune_for_streaming
    from streams.worker import run_worker

    tune_for_streaming()
    run_worker(settings, inventory=args.inventory, policy=args.policy, loglevel=args.loglevel)
    return 0


def cmd_alerts(args: argparse.Namespace, settings: Settings) -> int:
    from streams.alerts import follow_alerts

    return follow_alerts(settings, follow=args.follow, min_severity=args.min_severity, as_json=args.json)


def cmd_verify_audit(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from actions.audit_log import AuditLog

    path = Path(args.file) if args.file else settings.home / "actions" / "audit.jsonl"
    if not path.exists():
        print(f"kmo: no audit log at {path}", file=sys.stderr)
        return 1
    problems = AuditLog(path).verify()
    for problem in problems:
        print(f"{path}:{problem.line}: {problem.reason}")
    print(f"{path}: {'intact' if not problems else f'{len(problems)} problem(s)'}", file=sys.stderr)
    return 1 if problems else 0


def cmd_verify_certificate(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from actions.certificate import public_signer, verify

    try:
        cert = orjson.loads(Path(args.file).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        print(f"kmo: cannot read certificate {args.file}: {exc}", file=sys.stderr)
        return 2
    trusted = args.signer or (public_signer(settings.home) if (settings.home / "keys").exists() else None)
    problems = verify(cert, trusted)
    for problem in problems:
        print(f"{args.file}: {problem}")
    if not problems:
        print(f"{args.file}: valid, signed by {'kmo' if trusted else 'the embedded key (origin not checked)'}")
    return 1 if problems else 0


def destruction_pipeline(settings: Settings, audit: Any, recent_days: int = 30) -> Any:
    """The pipeline as every command builds it: usage from the warehouse, copies of key material
    from the warehouse (provider backups and exports) and from kmo's own audit log (HSM backups, replicas)."""
    from actions.destruction import (
        DestructionPipeline,
        all_backups,
        audit_backups,
        warehouse_backups,
        warehouse_usage,
    )

    return DestructionPipeline(
        settings.home,
        audit,
        warehouse_usage(settings),
        recent_days=recent_days,
        backups=all_backups(warehouse_backups(settings), audit_backups(audit)),
    )


def _run_request(doc: object, args: argparse.Namespace, settings: Settings) -> int:
    """Carry out one request: the shared path of ``kmo run`` and the per-operation commands."""
    import getpass
    from pathlib import Path

    from actions.audit_log import AuditLog
    from actions.backends.base import BackendError
    from actions.compliance import usage_summary
    from actions.execute import execute
    from actions.request import RequestError
    from actions.scheduler import PolicyStore
    from actions.select_backend import backend_for

    audit = AuditLog(settings.home / "actions" / "audit.jsonl")
    try:
        backend = backend_for(
            doc if isinstance(doc, dict) else {}, keystore=Path(args.keystore) if args.keystore else None
        )
        response = execute(
            doc,
            backend,
            audit,
            actor=args.actor or getpass.getuser(),
            destruction=destruction_pipeline(settings, audit),
            warehouse=lambda uris, since: usage_summary(settings, uris, since),
            policies=PolicyStore(settings.home),
            keystore=str(Path(args.keystore).absolute()) if args.keystore else None,
            rollback_to=getattr(args, "rollback_to", None),
            data_set=getattr(args, "data_set", None),
        )
    except RequestError as exc:
        for problem in exc.problems:
            print(f"kmo: request: {problem}", file=sys.stderr)
        return 2
    except BackendError as exc:
        print(f"kmo: {exc}", file=sys.stderr)
        return 1
    _print_json(response)
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """One operation request (the specification's input JSON) -> its response JSON on stdout."""
    from pathlib import Path

    try:
        raw = sys.stdin.buffer.read() if args.request == "-" else Path(args.request).read_bytes()
        doc = orjson.loads(raw)
    except (OSError, orjson.JSONDecodeError) as exc:
        print(f"kmo: cannot read request {args.request}: {exc}", file=sys.stderr)
        return 2
    return _run_request(doc, args, settings)


def cmd_derive(args: argparse.Namespace, settings: Settings) -> int:
    """``kmo derive``: an AES-256 key derived from a parent key in the local keystore (HKDF or SP 800-108)."""
    import getpass
    import uuid
    from datetime import UTC, datetime
    from pathlib import Path

    from actions.audit_log import AuditLog
    from actions.backends.base import BackendError, KeySpec
    from actions.backends.local import LocalKeystore
    from actions.execute import generation_record
    from ingest.schema import format_timestamp

    keystore = LocalKeystore(Path(args.keystore))
    audit = AuditLog(settings.home / "actions" / "audit.jsonl")
    base = {
        "operationId": str(uuid.uuid4()),
        "operation": "derive",
        "actor": args.actor or getpass.getuser(),
        "system": "local",
        "keyId": f"local:{args.key_id}",
        "derivedFrom": f"local:{args.parent}",
        "kdf": args.kdf,
        "context": args.context,
    }
    audit.append({**base, "outcome": "requested"})
    try:
        spec = KeySpec(name=args.key_id, key_type=args.key_type, algorithm="AES-256")
        info = keystore.derive(args.parent, spec, kdf=args.kdf, context=args.context)
    except BackendError as exc:
        audit.append({**base, "outcome": "failed", "error": f"{type(exc).__name__}: {exc}"})
        print(f"kmo: {exc}", file=sys.stderr)
        return 1
    made = generation_record(keystore, info) | {"entropySource": f"derived by {args.kdf} from local:{args.parent}"}
    audit.append({**base, "outcome": "succeeded", "version": info.version, "generation": made})
    out = {
        "operationId": base["operationId"],
        "operation": "derive",
        "timestamp": format_timestamp(datetime.now(UTC)),
        "keyInfo": info.to_schema() | {"keyType": args.key_type},
        "derivation": {"from": base["derivedFrom"], "kdf": args.kdf, "context": args.context},
    }
    _print_json(out)
    return 0


def cmd_inventory(args: argparse.Namespace, settings: Settings) -> int:
    """``kmo inventory``: one system as a plain request; ``--all`` every configured system, and
    ``--publish`` the snapshot to ``kmo.inventory.v1`` for the warehouse. Each listing is audited."""
    if not (args.all or args.publish):
        return cmd_operation(args, settings)
    import getpass

    from actions.audit_log import AuditLog
    from actions.backends.base import BackendError
    from actions.execute import execute
    from actions.inventory_publish import publish, snapshot
    from actions.select_backend import configured_backend

    systems = [*SYSTEMS, "local"] if args.all else [args.system or ("local" if args.keystore else "")]
    audit = AuditLog(settings.home / "actions" / "audit.jsonl")
    listings: dict[str, list[dict]] = {}
    report: dict[str, dict[str, object]] = {}
    for system in systems:
        backend = configured_backend(system, args.keystore)
        if backend is None:
            if not args.all:
                print(f"kmo: {system or 'no system'} is not configured (see kmo run's environment)", file=sys.stderr)
                return 2
            report[system] = {"skipped": "not configured in this environment"}
            continue
        doc = {"operation": "inventory"} | ({"keyManagementSystem": system} if system != "local" else {})
        try:
            listings[system] = execute(doc, backend, audit, actor=args.actor or getpass.getuser())["keys"]
            report[system] = {"keys": len(listings[system])}
        except BackendError as exc:
            report[system] = {"failed": str(exc)}
    docs = snapshot(listings)
    out = {
        "operation": "inventory",
        "snapshotId": docs[0]["snapshotId"] if docs else None,
        "auditReport": {"keysInventoried": len(docs)},
        "keys": [d["keyInfo"] | {"system": d["system"], "state": d["state"]} for d in docs],
        "systems": report,
        "published": publish(settings, docs) if args.publish else 0,
    }
    _print_json(out)
    return 1 if any("failed" in r for r in report.values()) else 0


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    """``kmo audit``: with ``--period START/END`` the auditReport for that period from the warehouse
    (every number with the saved query that reproduces it); otherwise the key manager's view now."""
    if not args.period:
        return cmd_operation(args, settings)
    import getpass
    import uuid
    from datetime import UTC, datetime

    from actions.audit_log import AuditLog
    from actions.request import RequestError, parse_duration, parse_period
    from analytics.audit_report import audit_report
    from analytics.query import QueryError
    from ingest.schema import format_timestamp
    from streams.policy import PolicyError, load_policy

    audit = AuditLog(settings.home / "actions" / "audit.jsonl")
    base = {"operationId": str(uuid.uuid4()), "operation": "audit", "actor": args.actor or getpass.getuser()}
    try:
        start, end = parse_period(args.period)
        notify = parse_duration(args.notify_before, "--notify-before") if args.notify_before else None
        policy = load_policy(os.environ.get("KMO_POLICY"))
        base["period"] = args.period
        audit.append({**base, "outcome": "requested"})
        result = audit_report(settings, start, end, policy, **({"notify": notify} if notify else {}))
    except (ValueError, RequestError, PolicyError) as exc:
        print(f"kmo audit: {exc}", file=sys.stderr)
        return 2
    except QueryError as exc:
        audit.append({**base, "outcome": "failed", "error": str(exc)[:300]})
        print(f"kmo audit: {exc}", file=sys.stderr)
        return 1
    audit.append({**base, "outcome": "succeeded"})
    _print_json(
        {"operationId": base["operationId"], "operation": "audit", "timestamp": format_timestamp(datetime.now(UTC))}
        | result
    )
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    """``kmo report``: compliance reports from the warehouse (JSON, HTML with charts, CSV evidence)."""
    from pathlib import Path

    from actions.request import parse_period
    from analytics.compliance_report import FRAMEWORKS, Evidence, controls
    from analytics.query import QueryError
    from analytics.report_html import write_report
    from streams.policy import PolicyError, load_policy

    try:
        start, end = parse_period(args.period)
        policy = load_policy(args.policy or os.environ.get("KMO_POLICY"))
        evidence = Evidence(settings, start, end, policy)
    except (ValueError, PolicyError) as exc:
        print(f"kmo report: {exc}", file=sys.stderr)
        return 2
    except QueryError as exc:
        print(f"kmo report: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out) if args.out else settings.home / "reports" / f"{start:%Y%m%d}-{end:%Y%m%d}"
    written = [write_report(out, f, evidence, controls(evidence, f)) for f in args.framework or FRAMEWORKS]
    for w in written:
        print(f"{w['framework']:<11} {'compliant' if w['compliant'] else 'not compliant':<14} {w['html']}")
    return 0


def cmd_cbom(args: argparse.Namespace, settings: Settings) -> int:
    """The latest inventory as a CycloneDX 1.6 CBOM (stdout, or --out FILE)."""
    from pathlib import Path

    from analytics.cbom import cbom_from_warehouse
    from analytics.query import QueryError

    try:
        doc = cbom_from_warehouse(settings)
    except QueryError as exc:
        print(f"kmo cbom: {exc}", file=sys.stderr)
        return 1
    text = orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()
    if args.out:
        Path(args.out).write_text(text)
        keys = sum(1 for c in doc["components"] if c["cryptoProperties"]["assetType"] == "related-crypto-material")
        print(f"{args.out}: {keys} keys, {len(doc['components']) - keys} algorithms", file=sys.stderr)
    else:
        print(text)
    return 0


def cmd_model(args: argparse.Namespace, settings: Settings) -> int:
    """``kmo model train|score``: the learned anomaly model over the warehouse (analytics/anomaly_model.py)."""
    from actions.request import parse_period
    from analytics import anomaly_model as am
    from analytics.query import QueryError

    models = settings.home / "models"
    try:
        start, end = parse_period(args.period)
        rows = am.features_from_warehouse(settings, start, end)
        if args.step == "train":
            model = am.train(rows, algorithm=args.algorithm, quantile=args.quantile)
            target = am.save(model, models, window=(start, end))
            models_by = ", ".join(f"{p}: {n}" for p, n in model.meta["rows_by_provider"].items())
            print(f"trained {args.algorithm} on {len(rows)} key-principal-hours ({models_by})")
            print(f"saved to {target}")
            return 0
        model = am.load(models)
        findings = model.findings(rows)
        for finding in findings:
            print(orjson.dumps(finding.to_ocsf()).decode())
        if args.publish and findings:
            from kmo.kafka import ensure_all_topics, produce_confirmed

            topic = ensure_all_topics(settings).findings.name
            produce_confirmed(settings, topic, [(f.uid.encode(), orjson.dumps(f.to_ocsf())) for f in findings])
        print(f"{len(rows)} key-principal-hours scored, {len(findings)} anomalous", file=sys.stderr)
        return 0
    except (ValueError, am.ModelError) as exc:
        print(f"kmo model {args.step}: {exc}", file=sys.stderr)
        return 2
    except QueryError as exc:
        print(f"kmo model {args.step}: {exc}", file=sys.stderr)
        return 1


def cmd_operation(args: argparse.Namespace, settings: Settings) -> int:
    """``kmo generate|rotate|audit|policy-check|inventory`` with flags: the same request, built here."""
    doc: dict[str, object] = {"operation": args.command}
    for flag, field in (
        ("system", "keyManagementSystem"),
        ("key_id", "keyId"),
        ("key_type", "keyType"),
        ("algorithm", "algorithm"),
    ):
        if getattr(args, flag, None):
            doc[field] = getattr(args, flag)
    policy = {
        field: value
        for field, value in (
            ("maxAge", getattr(args, "max_age", None)),
            ("autoRotate", getattr(args, "auto_rotate", None) or None),
            ("notifyBefore", getattr(args, "notify_before", None)),
        )
        if value is not None
    }
    if policy:
        doc["rotationPolicy"] = policy
    if getattr(args, "framework", None):
        doc["complianceFrameworks"] = args.framework
    return _run_request(doc, args, settings)


def cmd_responder(args: argparse.Namespace, settings: Settings) -> int:
    """Act on findings as the policy's auto_response allows (rotate, disable; never destroy)."""
    from actions.audit_log import AuditLog
    from actions.responder import Responder, run
    from actions.select_backend import configured_backend
    from streams.policy import PolicyError, load_policy

    try:
        policy = load_policy(args.policy or os.environ.get("KMO_POLICY"))
    except PolicyError as exc:
        print(f"kmo responder: {exc}", file=sys.stderr)
        return 2
    if not policy.auto_response:
        print("kmo responder: the policy's auto_response is empty, so findings will only be read", file=sys.stderr)
    else:
        print(f"kmo responder: mode {policy.response_mode}, rules {', '.join(policy.auto_response)}", file=sys.stderr)
    backends = functools.cache(lambda provider: configured_backend(str(provider), args.keystore))

    responder = Responder(policy, backends, AuditLog(settings.home / "actions" / "audit.jsonl"))
    seen = run(settings, responder, idle_seconds=args.until_idle)
    print(f"kmo responder: {seen} findings read", file=sys.stderr)
    return 0


def cmd_scheduler(args: argparse.Namespace, settings: Settings) -> int:
    """Enforce stored rotation policies: rotate what is due (autoRotate), notify what is close."""
    import time

    from actions.audit_log import AuditLog
    from actions.scheduler import PolicyStore, Scheduler
    from actions.select_backend import configured_backend

    configured = functools.cache(configured_backend)  # one client per system for the whole run

    scheduler = Scheduler(
        PolicyStore(settings.home),
        lambda doc: configured(doc["system"], doc.get("keystore")),
        AuditLog(settings.home / "actions" / "audit.jsonl"),
    )
    if args.config:
        return _scheduled_jobs(args, settings, scheduler)
    while True:
        for entry in scheduler.tick():
            print(orjson.dumps(entry).decode(), flush=True)
        if args.once:
            return 0
        time.sleep(args.interval)


def _scheduled_jobs(args: argparse.Namespace, settings: Settings, scheduler: Any) -> int:
    """``kmo scheduler --config FILE``: the schedule's jobs, caught up after downtime, each announced."""
    import time

    from analytics.schedule import JobRunner, ScheduleError, load_schedule
    from analytics.scheduled_tasks import absence_task, report_task
    from kmo.kafka import ensure_all_topics, produce_confirmed
    from streams.policy import PolicyError, load_policy

    try:
        jobs = load_schedule(args.config)
        policy = load_policy(os.environ.get("KMO_POLICY"))
    except (ScheduleError, PolicyError) as exc:
        print(f"kmo scheduler: {exc}", file=sys.stderr)
        return 2
    topics = ensure_all_topics(settings)

    def publish(findings: list) -> None:
        produce_confirmed(
            settings, topics.findings.name, [(f.uid.encode(), orjson.dumps(f.to_ocsf())) for f in findings]
        )

    def announce(message: dict) -> None:
        produce_confirmed(settings, topics.reports.name, [(message["job"].encode(), orjson.dumps(message))])
        print(orjson.dumps(message).decode(), flush=True)

    runner = JobRunner(
        settings.home,
        jobs,
        {
            "report": report_task(settings, policy),
            "absence-detection": absence_task(settings, policy, publish),
            "rotation-check": lambda job, slot: {"entries": scheduler.tick()},
        },
        announce,
    )
    while True:
        runner.run_due()
        if args.once:
            return 0
        time.sleep(args.interval)


def cmd_ship_audit(args: argparse.Namespace, settings: Settings) -> int:
    """Produce new orchestrator audit entries to the actions topic (the sink stores them in DuckDB)."""
    from actions.audit_shipper import ship

    print(f"kmo ship-audit: {ship(settings)} entries shipped", file=sys.stderr)
    return 0


def cmd_destroy(args: argparse.Namespace, settings: Settings) -> int:
    """The destruction pipeline, one step per invocation (see actions/destruction.py)."""
    import getpass
    from pathlib import Path

    from actions.audit_log import AuditLog
    from actions.backends.base import BackendError
    from actions.custodians import CustodianRefused
    from actions.destruction import DestructionRefused
    from actions.request import RequestError, parse_duration
    from actions.select_backend import backend_for

    actor = args.actor or getpass.getuser()
    pipeline = destruction_pipeline(settings, AuditLog(settings.home / "actions" / "audit.jsonl"), args.recent_days)

    def backend(doc: dict, *, final: bool = False):
        keystore = Path(doc["keystore"]) if doc.get("keystore") else None
        return backend_for({"keyManagementSystem": doc["system"]}, keystore=keystore, allow_immediate_destroy=final)

    if args.step == "propose" and not (args.key and args.system and args.reason):
        print("kmo destroy propose: --key, --system and --reason are required", file=sys.stderr)
        return 2
    if args.step not in ("propose", "status") and not args.proposal:
        print(f"kmo destroy {args.step}: the proposal id is required", file=sys.stderr)
        return 2
    try:
        if args.step == "propose":
            keystore = str(Path(args.keystore).absolute()) if args.keystore else None
            result = pipeline.propose(
                backend({"system": args.system, "keystore": keystore}),
                args.key,
                proposer=actor,
                reason=args.reason,
                pending=parse_duration(args.pending, "--pending"),
                override_recent_use=args.override_recent_use,
                backups_covered=args.backups_covered,
                keystore=keystore,
            )
        elif args.step == "status":
            result = pipeline.load(args.proposal) if args.proposal else pipeline.proposals()
        else:
            doc = pipeline.load(args.proposal)
            if args.step == "approve":
                from actions.custodians import sign
                from actions.destruction import approval_statement

                signature = sign(Path(args.signing_key), approval_statement(doc, actor)) if args.signing_key else None
                result = pipeline.approve(args.proposal, actor, signature=signature)
            elif args.step == "execute":
                result = pipeline.execute(args.proposal, backend(doc), actor)
            elif args.step == "complete":
                result = pipeline.complete(
                    args.proposal, backend(doc, final=True), actor, witness=args.witness or actor
                )
            else:
                result = pipeline.cancel(args.proposal, backend(doc), actor, args.reason)
    except (DestructionRefused, RequestError, BackendError, CustodianRefused) as exc:
        print(f"kmo destroy {args.step}: {exc}", file=sys.stderr)
        return 1
    _print_json(result)
    return 0


def cmd_distribute(args: argparse.Namespace, settings: Settings) -> int:
    """Move a key from the local keystore to another system, wrapped for the target's import key."""
    import getpass
    from pathlib import Path

    from actions.audit_log import AuditLog
    from actions.backends.base import BackendError
    from actions.backends.local import LocalKeystore
    from actions.distribution import WrapError, distribute
    from actions.request import RequestError
    from actions.select_backend import backend_for

    if args.to == "local" and not args.target_keystore:
        print("kmo distribute: --to local needs --target-keystore", file=sys.stderr)
        return 2
    try:
        target = (
            LocalKeystore(Path(args.target_keystore))
            if args.to == "local"
            else backend_for({"keyManagementSystem": args.to})
        )
        if not hasattr(target, "import_wrapped"):
            print(f"kmo distribute: {args.to} takes no wrapped imports here", file=sys.stderr)
            return 2
        result = distribute(
            LocalKeystore(Path(args.keystore)),
            args.key,
            target,  # type: ignore[arg-type]
            args.target_name or args.key,
            AuditLog(settings.home / "actions" / "audit.jsonl"),
            args.actor or getpass.getuser(),
        )
    except RequestError as exc:
        print(f"kmo distribute: {'; '.join(exc.problems)}", file=sys.stderr)
        return 2
    except (BackendError, WrapError) as exc:
        print(f"kmo distribute: {exc}", file=sys.stderr)
        return 1
    _print_json(result)
    return 0


def cmd_activate(args: argparse.Namespace, settings: Settings) -> int:
    """The separate, audited step that makes a pre-activation key (an import) usable."""
    import getpass
    from pathlib import Path

    from actions.audit_log import AuditLog
    from actions.backends.base import BackendError
    from actions.backends.local import LocalKeystore

    audit = AuditLog(settings.home / "actions" / "audit.jsonl")
    base = {
        "operation": "activate",
        "actor": args.actor or getpass.getuser(),
        "system": "local",
        "keyId": f"local:{args.key_id}",
    }
    audit.append({**base, "outcome": "requested"})
    try:
        info = LocalKeystore(Path(args.keystore)).activate(args.key_id)
    except BackendError as exc:
        audit.append({**base, "outcome": "failed", "error": f"{type(exc).__name__}: {exc}"})
        print(f"kmo activate: {exc}", file=sys.stderr)
        return 1
    audit.append({**base, "outcome": "succeeded", "version": info.version})
    _print_json({"operation": "activate", "keyInfo": info.to_schema(), "state": str(info.state)})
    return 0


def cmd_shred(args: argparse.Namespace, settings: Settings) -> int:
    """Crypto-shred a data set: one destruction proposal per data key labelled with it (actions/shred.py)."""
    import getpass
    from pathlib import Path

    from actions import shred
    from actions.audit_log import AuditLog
    from actions.backends.base import BackendError
    from actions.destruction import DestructionRefused
    from actions.request import RequestError, parse_duration
    from actions.select_backend import backend_for

    pipeline = destruction_pipeline(settings, AuditLog(settings.home / "actions" / "audit.jsonl"))
    try:
        if args.step == "status":
            if not args.shred:
                print("kmo shred status: the crypto-shred id is required", file=sys.stderr)
                return 2
            result = shred.status(pipeline, args.shred)
        else:
            if not (args.data_set and args.reason and (args.system or args.keystore)):
                print(
                    "kmo shred propose: --data-set, --reason and --system (or --keystore) are required", file=sys.stderr
                )
                return 2
            keystore = str(Path(args.keystore).absolute()) if args.keystore else None
            backend = backend_for({"keyManagementSystem": args.system}, keystore=Path(keystore) if keystore else None)
            result = shred.propose(
                pipeline,
                backend,
                args.data_set,
                proposer=args.actor or getpass.getuser(),
                reason=args.reason,
                pending=parse_duration(args.pending, "--pending"),
                override_recent_use=args.override_recent_use,
                backups_covered=args.backups_covered,
                keystore=keystore,
            )
    except (DestructionRefused, RequestError, BackendError) as exc:
        print(f"kmo shred {args.step}: {exc}", file=sys.stderr)
        return 1
    _print_json(result)
    return 0


def cmd_custodian(args: argparse.Namespace, settings: Settings) -> int:
    """Custodians bound to Ed25519 keys: keygen, add, remove, list; and key ceremonies."""
    import getpass
    from pathlib import Path

    from actions.audit_log import AuditLog
    from actions.custodians import CustodianRefused, CustodianRegistry, Signed, keygen, sign, statement

    required = {
        "keygen": ["out"],
        "add": ["name", "public_key"],
        "remove": ["name"],
        "ceremony": ["key", "action", "present"],
    }
    missing = [
        f"--{f.replace('_', '-')}" if f != "name" else "NAME"
        for f in required.get(args.step, [])
        if not getattr(args, f)
    ]
    if missing:
        print(f"kmo custodian {args.step}: needs {', '.join(missing)}", file=sys.stderr)
        return 2
    actor = args.actor or getpass.getuser()
    registry = CustodianRegistry(settings.home, AuditLog(settings.home / "actions" / "audit.jsonl"))
    try:
        if args.step == "keygen":
            public = keygen(Path(args.out))
            _print_json({"privateKeyFile": args.out, "publicKey": public})
            return 0
        if args.step == "list":
            _print_json(registry.load())
            return 0
        if args.step == "ceremony":
            present = [p.strip() for p in args.present.split(",") if p.strip()]
            message = statement("kmo-key-ceremony", keyId=args.key, action=args.action, present=sorted(present))
            signed = [Signed(who, sign(Path(path), message)) for who, _, path in (s.partition("=") for s in args.sign)]
            _print_json(registry.record_ceremony(args.key, args.action, present, signed, actor))
            return 0
        endorsement = None
        if args.endorse_by:
            if not args.signing_key:
                print("kmo custodian: --endorse-by needs --signing-key", file=sys.stderr)
                return 2
            key = args.public_key if args.step == "add" else None
            message = registry.change_statement(args.step, args.name, key)
            endorsement = Signed(args.endorse_by, sign(Path(args.signing_key), message))
        if args.step == "add":
            result = registry.add(args.name, args.public_key or "", actor, endorsement)
        else:
            result = registry.remove(args.name, actor, endorsement)
    except CustodianRefused as exc:
        print(f"kmo custodian {args.step}: {exc}", file=sys.stderr)
        return 1
    _print_json(result)
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from kmo.demo.run import run_demo

    return run_demo(settings, seed=args.seed, days=args.days, keep_broker=args.keep_broker)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kmo", description="kmo: the key management orchestrator")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("broker", help="the embedded Apache Kafka broker")
    p.add_argument("action", choices=["fetch", "start", "stop", "status"])
    p.add_argument("--port", type=int, help="listener port (default: free port, kept across restarts)")
    p.add_argument("--offline", action="store_true", help="fetch: use only the local Maven repository")
    p.add_argument("--tls", action="store_true", help="start: also open TLS and SASL_SSL listeners (own CA)")
    p.set_defaults(func=cmd_broker)

    p = sub.add_parser("ingest", help="read audit logs and produce normalised events to Kafka")
    p.add_argument("source", choices=sorted(CLI_SOURCES))
    p.add_argument("paths", nargs="*", metavar="PATH_OR_S3_URI", help="files, directories or s3://bucket/prefix")
    p.add_argument("--project", help="gcp: read this project's audit logs live through the Logging API")
    p.add_argument("--follow", metavar="PATH", help="vault: tail a file audit device's log (rotation-aware)")
    p.add_argument("--listen", metavar="HOST:PORT", help="vault: receive a socket audit device (TCP)")
    p.add_argument("--since", help="gcp --project: first run starts here (RFC 3339; default 30 days ago)")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON on stdout")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--watch", type=float, metavar="SECONDS", help="re-scan the inputs every SECONDS until stopped")
    p.add_argument("--batch-records", type=int, default=5000, help="records per flush-and-checkpoint (5000)")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("sink", help="consume events into the DuckDB warehouse (the only writer)")
    p.add_argument("--until-idle", type=float, metavar="SECONDS", help="stop once caught up and idle this long")
    p.add_argument("--batch-max", type=int, default=20000, help="most events per DuckDB transaction (20000)")
    p.set_defaults(func=cmd_sink)

    p = sub.add_parser("query", help="run read-only SQL, or a saved query, against the warehouse")
    p.add_argument("sql", nargs="?")
    p.add_argument("--saved", metavar="NAME", help="a saved query from sql/queries (see --list-saved)")
    p.add_argument("--list-saved", action="store_true", help="list the saved queries and their parameters")
    p.add_argument("--param", action="append", help="a ? parameter for SQL, or name=value for --saved (repeatable)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("dlq", help="list dead letters (records that could not be used) and why")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dlq)

    p = sub.add_parser("detect", help="run the detection rules over log files (no broker); findings as JSON lines")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--source", choices=sorted(CLI_SOURCES), default="cloudtrail")
    p.add_argument("--inventory", metavar="FILE", help="JSON array of keyInfo records (enables absence rules)")
    p.add_argument("--policy", metavar="FILE", help="YAML policy overriding the shipped default")
    p.add_argument("--now", metavar="TIME", help="evaluate absence rules as of this time (default: newest event)")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("worker", help="the Faust stream worker: events in, findings out")
    p.add_argument("--inventory", metavar="FILE", help="key inventory (or KMO_INVENTORY)")
    p.add_argument("--policy", metavar="FILE", help="policy YAML (or KMO_POLICY)")
    p.add_argument("--loglevel", choices=["crit", "error", "warn", "info", "debug"], default="warn")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("alerts", help="show findings from the findings topic (latest state of each)")
    p.add_argument("--follow", action="store_true", help="keep watching for new and updated findings")
    p.add_argument("--min-severity", choices=["informational", "low", "medium", "high", "critical"], default="low")
    p.add_argument("--json", action="store_true", help="OCSF JSON lines instead of a table")
    p.set_defaults(func=cmd_alerts)

    p = sub.add_parser("verify-audit", help="check the orchestrator audit log's hash chain")
    p.add_argument("file", nargs="?", help="audit log (default: $KMO_HOME/actions/audit.jsonl)")
    p.set_defaults(func=cmd_verify_audit)

    p = sub.add_parser("verify-certificate", help="check a destruction certificate's hash and signature")
    p.add_argument("file")
    p.add_argument("--signer", help="the base64 Ed25519 public key to trust (default: this KMO_HOME's)")
    p.set_defaults(func=cmd_verify_certificate)

    p = sub.add_parser("run", help="carry out one operation request (the specification's JSON) and audit it")
    p.add_argument("--request", required=True, help="the request JSON file, or - for stdin")
    p.add_argument("--keystore", help="use the local encrypted keystore in this directory instead of a provider")
    p.add_argument("--actor", help="who asked (default: the login name); recorded in the audit log")
    p.set_defaults(func=cmd_run)

    systems = list(SYSTEMS)
    operations = {
        "generate": "create a key (in the provider's or the HSM's generator) and record who, when and how",
        "rotate": "make a new version primary; earlier versions keep decrypting",
        "inventory": "every key the system holds, in the keyInfo shape",
        "audit": "inventory, policy violations, rotations, unused and expiring keys for the last 30 days",
        "policy-check": "the stream's inventory rules, mapped to each framework's controls",
    }
    for name, text in operations.items():
        p = sub.add_parser(name, help=text)
        p.add_argument("--system", choices=systems, help="keyManagementSystem (or --keystore for the local one)")
        p.add_argument("--keystore", help="use the local encrypted keystore in this directory")
        p.add_argument("--actor", help="who asked (default: the login name); recorded in the audit log")
        if name != "inventory":
            p.add_argument("--key-id", required=name == "rotate", help="the key (name or provider id)")
        if name == "generate":
            p.add_argument("--key-type", required=True, choices=["master", "data", "signing", "tls", "api", "session"])
            p.add_argument("--algorithm", required=True, choices=list(ALGORITHMS))
            p.add_argument("--max-age", help="rotation period, e.g. 90d")
            p.add_argument("--auto-rotate", action="store_true", help="let the provider rotate every --max-age")
            p.add_argument("--data-set", help="label the key with the data set it protects (for kmo shred)")
        if name == "rotate":
            p.add_argument(
                "--rollback-to",
                type=int,
                metavar="VERSION",
                help="make this earlier version current again instead (where the system allows it)",
            )
        if name in ("generate", "audit"):
            p.add_argument("--notify-before", help="warn this long before rotation is due, e.g. 14d")
        if name == "audit":
            p.add_argument("--period", help="START/END: the auditReport for that period, from the warehouse")
        if name == "inventory":
            p.add_argument("--all", action="store_true", help="every system configured in this environment")
            p.add_argument(
                "--publish", action="store_true", help="send the snapshot to kmo.inventory.v1 (the warehouse)"
            )
        if name == "policy-check":
            p.add_argument("--framework", action="append", choices=frameworks())
        p.set_defaults(func={"inventory": cmd_inventory, "audit": cmd_audit}.get(name, cmd_operation))

    p = sub.add_parser("derive", help="derive an AES-256 key from a parent key (local keystore): HKDF or SP 800-108")
    p.add_argument("--keystore", required=True, help="the local keystore holding the parent")
    p.add_argument("--from", dest="parent", required=True, help="the parent key (an active AES-256 key)")
    p.add_argument("--key-id", required=True, help="the derived key's name")
    p.add_argument("--kdf", choices=["hkdf", "sp800-108"], default="sp800-108")
    p.add_argument("--context", required=True, help="what the key is for, e.g. a tenant id (recorded; not a secret)")
    p.add_argument("--key-type", default="data", choices=["master", "data", "signing", "tls", "api", "session"])
    p.add_argument("--actor", help="who asked (default: the login name); recorded in the audit log")
    p.set_defaults(func=cmd_derive)

    p = sub.add_parser(
        "responder", help="act on findings as the policy's auto_response and response_mode allow (never destroys)"
    )
    p.add_argument("--policy", help="policy YAML (default: $KMO_POLICY or the shipped default)")
    p.add_argument("--keystore", help="the local keystore, for findings about local: keys")
    p.add_argument("--until-idle", type=float, help="stop after this many seconds without findings")
    p.set_defaults(func=cmd_responder)

    p = sub.add_parser(
        "scheduler", help="rotation policies; with --config, scheduled reports, rotation checks and absence detection"
    )
    p.add_argument("--config", help="a schedule (YAML): jobs of task report|rotation-check|absence-detection")
    p.add_argument("--once", action="store_true", help="one pass, then exit (for cron and systemd timers)")
    p.add_argument("--interval", type=float, default=3600, help="seconds between passes (default 3600)")
    p.set_defaults(func=cmd_scheduler)

    p = sub.add_parser("ship-audit", help="send new orchestrator audit entries to the actions topic")
    p.set_defaults(func=cmd_ship_audit)

    p = sub.add_parser("destroy", help="the destruction pipeline: propose, approve (x2), execute, complete")
    p.add_argument("step", choices=["propose", "approve", "execute", "complete", "cancel", "status"])
    p.add_argument("proposal", nargs="?", help="proposal id (every step but propose)")
    p.add_argument("--key", help="propose: the key's name or id in its manager")
    p.add_argument("--system", choices=[*SYSTEMS, "local"], help="propose: where the key lives")
    p.add_argument("--keystore", help="propose: the local keystore directory (with --system local)")
    p.add_argument("--reason", default="", help="propose and cancel: why (recorded)")
    p.add_argument("--pending", default="7d", help="propose: pending window / soak period (default 7d)")
    p.add_argument("--override-recent-use", help="propose: destroy despite recent use; the justification")
    p.add_argument("--recent-days", type=int, default=30, help="propose: refuse if used within this many days")
    p.add_argument(
        "--backups-covered",
        help="propose: how the backups/exports on record are accounted for (goes into the certificate)",
    )
    p.add_argument("--witness", help="complete: who witnessed the destruction (default: the actor)")
    p.add_argument("--signing-key", help="approve: the custodian's Ed25519 key file (needed once custodians exist)")
    p.add_argument("--actor", help="who is acting (default: the login name); recorded in the audit log")
    p.set_defaults(func=cmd_destroy)

    p = sub.add_parser("distribute", help="move a local key to another system, wrapped for its import key")
    p.add_argument("--keystore", required=True, help="the local keystore holding the key")
    p.add_argument("--key", required=True, help="the key to distribute (its primary version)")
    p.add_argument("--to", required=True, choices=["vault", "gcp-kms", "local"], help="the target system")
    p.add_argument("--target-keystore", help="--to local: the target keystore")
    p.add_argument("--target-name", help="the key's name at the target (default: the same)")
    p.add_argument("--actor", help="who is acting (default: the login name); recorded in the audit log")
    p.set_defaults(func=cmd_distribute)

    p = sub.add_parser("activate", help="make a pre-activation key (an import) usable: a separate, audited step")
    p.add_argument("--keystore", required=True, help="the local keystore holding the key")
    p.add_argument("--key-id", required=True)
    p.add_argument("--actor", help="who is acting (default: the login name); recorded in the audit log")
    p.set_defaults(func=cmd_activate)

    p = sub.add_parser("shred", help="crypto-shred a data set: destroy every data key labelled with it")
    p.add_argument("step", choices=["propose", "status"])
    p.add_argument("shred", nargs="?", help="status: the crypto-shred id")
    p.add_argument("--data-set", help="propose: the data set (its keys were generated with --data-set)")
    p.add_argument("--system", choices=[*SYSTEMS, "local"], help="propose: where its keys live")
    p.add_argument("--keystore", help="propose: the local keystore")
    p.add_argument("--reason", help="propose: why")
    p.add_argument("--pending", default="7d", help="propose: pending window / soak (default 7d)")
    p.add_argument("--override-recent-use", help="propose: shred despite recent use; the justification")
    p.add_argument("--backups-covered", help="propose: how backups/exports on record are accounted for")
    p.add_argument("--actor", help="who is acting (default: the login name); recorded in the audit log")
    p.set_defaults(func=cmd_shred)

    p = sub.add_parser("custodian", help="custodians bound to signing keys; custodian changes; key ceremonies")
    p.add_argument("step", choices=["keygen", "add", "remove", "list", "ceremony"])
    p.add_argument("name", nargs="?", help="add/remove: the custodian")
    p.add_argument("--out", help="keygen: where to write the custodian's private key (0600)")
    p.add_argument("--public-key", help="add: the custodian's public key, as keygen printed it")
    p.add_argument("--endorse-by", help="add/remove: the registered custodian signing the change")
    p.add_argument("--signing-key", help="add/remove: that custodian's key file")
    p.add_argument("--key", help="ceremony: the key concerned")
    p.add_argument("--action", help="ceremony: what was done")
    p.add_argument("--present", help="ceremony: who was present, comma-separated")
    p.add_argument("--sign", action="append", default=[], help="ceremony: NAME=KEYFILE, once per signing custodian")
    p.add_argument("--actor", help="who is acting (default: the login name); recorded in the audit log")
    p.set_defaults(func=cmd_custodian)

    p = sub.add_parser("report", help="compliance reports from the warehouse: JSON, HTML with charts, CSV evidence")
    p.add_argument("--framework", action="append", choices=frameworks())
    p.add_argument("--period", required=True, help="START/END timestamps, or last/30d")
    p.add_argument("--out", help="directory for the reports (default $KMO_HOME/reports/<period>)")
    p.add_argument("--policy", help="policy file (cryptoperiods per key type); default the shipped policy")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("cbom", help="the latest key inventory as a CycloneDX 1.6 cryptographic bill of materials")
    p.add_argument("--out", help="write here instead of stdout")
    p.set_defaults(func=cmd_cbom)

    p = sub.add_parser("model", help="the learned anomaly model: train on the warehouse, score a period")
    p.add_argument("step", choices=["train", "score"])
    p.add_argument("--period", required=True, help="START/END timestamps, or last/30d")
    p.add_argument("--algorithm", choices=["isolation-forest", "lof"], default="isolation-forest")
    p.add_argument("--quantile", type=float, default=0.995, help="train: normal share of training hours (threshold)")
    p.add_argument("--publish", action="store_true", help="score: send the findings to the findings topic")
    p.set_defaults(func=cmd_model)

    from kmo.hsm_commands import add_parser as add_hsm_parser

    add_hsm_parser(sub)

    p = sub.add_parser("demo", help="synthetic estate -> CloudTrail files -> Kafka -> DuckDB, end to end")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--days", type=int, default=21)
    p.add_argument("--keep-broker", action="store_true", help="leave the embedded broker running afterwards")
    p.set_defaults(func=cmd_demo)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line. ``kmo ingest``'s paths are optional (``--project`` reads an API
    instead), and argparse binds an empty list to an optional positional before it sees options
    (``ingest cloudtrail --watch 60 s3://...``): trailing positionals are handed back to it here."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if args.command == "ingest" and not any(e.startswith("-") for e in extra):
            args.paths = [*args.paths, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    level = logging.INFO if args.verbose else getattr(logging, os.environ.get("KMO_LOG_LEVEL", "WARNING").upper())
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # kafka-python warns about its own event loop under load; users need its errors only.
    logging.getLogger("kafka").setLevel(logging.INFO if args.verbose else logging.ERROR)
    try:
        settings = Settings.from_env()
        return int(args.func(args, settings))
    except ConfigError as exc:
        print(f"kmo: configuration error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `kmo alerts | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if not isinstance(exc, _broker_errors()):
            raise
        print(f"kmo: {_broker_trouble(exc)}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
