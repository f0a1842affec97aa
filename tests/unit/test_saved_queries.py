"""Every saved query runs against a fixture warehouse (the demo estate, loaded without a broker),
with the parameters its header gives as an example; some answers are checked exactly."""

from __future__ import annotations

import pytest

from analytics.saved_queries import SavedQueryError, load_all, parse, run_saved
from kmo.demo.offline_warehouse import build
from kmo.settings import Settings

QUERIES = load_all()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict]:
    home = tmp_path_factory.mktemp("wh")
    settings = Settings.from_env({"KMO_HOME": str(home)})
    counts = build(settings.warehouse, home / "estate")
    return settings, counts


def test_the_queries_the_issue_names_are_all_there() -> None:
    assert set(QUERIES) >= {
        "usage_by_key", "last_use", "unused_keys", "expiring_keys", "rotation_overdue", "rotation_history",
        "who_touched_key", "principal_activity", "key_timeline", "findings_summary", "source_health",
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_saved_query_runs_with_its_example(warehouse, name: str) -> None:
    settings, _ = warehouse
    query = QUERIES[name]
    assert query.answers and {p.name for p in query.params} == set(query.example)
    table = run_saved(settings, name, query.example)
    assert table.num_columns > 0


def test_answers_on_the_fixture(warehouse) -> None:
    settings, counts = warehouse
    usage = run_saved(settings, "usage_by_key", QUERIES["usage_by_key"].example).to_pylist()
    assert sum(r["events"] for r in usage) > 1000 and all(r["day"] is not None for r in usage)
    findings = run_saved(settings, "findings_summary", {"since": "2026-01-01T00:00:00Z"}).to_pylist()
    assert sum(r["findings"] for r in findings) == counts["findings"]
    history = run_saved(settings, "rotation_history", {"key": "vault:transit/keys/payments"}).to_pylist()
    assert [(r["recorded_by"], r["what"], r["success"]) for r in history if r["recorded_by"] == "kmo"] == [
        ("kmo", "rotate", True),
        ("kmo", "rotate", False),
    ]
    timeline = run_saved(settings, "key_timeline", {"key": "vault:transit/keys/payments"}).to_pylist()
    assert {r["kind"] for r in timeline} == {"event", "finding", "kmo action"}
    assert [r["time"] for r in timeline] == sorted(r["time"] for r in timeline)
    overdue = run_saved(settings, "rotation_overdue", {"max_age_days": "30", "as_of": "2026-12-01T00:00:00Z"})
    assert all(r["age_days"] > 30 for r in overdue.to_pylist()) and overdue.num_rows > 0
    none_overdue = run_saved(settings, "rotation_overdue", {"max_age_days": "100000", "as_of": "2026-12-01T00:00:00Z"})
    assert none_overdue.num_rows == 0
    unused = {r["key_uri"] for r in run_saved(settings, "unused_keys", {"since": "2026-11-28T00:00:00Z"}).to_pylist()}
    last_use = run_saved(settings, "last_use", {}).to_pylist()
    assert unused == {
        r["key_id"] for r in last_use
        if (r["last_use"] is None or r["last_use"].isoformat() < "2026-11-28") and r["status"] != "destroyed"
        and ":alias/" not in r["key_id"]
    }  # fmt: skip
    health = run_saved(settings, "source_health", {}).to_pylist()
    assert {r["source"] for r in health} >= {"aws.cloudtrail", "vault.audit", "gcp.audit", "azure.keyvault"}


def test_parameters_are_checked_and_bound(warehouse) -> None:
    settings, _ = warehouse
    with pytest.raises(SavedQueryError, match="missing until"):
        run_saved(settings, "usage_by_key", {"since": "2026-11-01T00:00:00Z"})
    with pytest.raises(SavedQueryError, match="unknown key"):
        run_saved(settings, "source_health", {"key": "x"})
    with pytest.raises(SavedQueryError, match="since must be a timestamp"):
        run_saved(settings, "unused_keys", {"since": "yesterday"})
    with pytest.raises(SavedQueryError, match="no saved query"):
        run_saved(settings, "drop_everything", {})
    hostile = "x' OR 1=1; DROP TABLE events; --"
    assert run_saved(settings, "who_touched_key", {"key": hostile}).num_rows == 0  # bound, not formatted
    assert run_saved(settings, "usage_by_key", QUERIES["usage_by_key"].example).num_rows > 0  # events still there


def test_headers_must_declare_exactly_the_parameters_used() -> None:
    with pytest.raises(SavedQueryError, match="uses"):
        parse("q", "-- name: q\n-- answers: a\nSELECT $undeclared")
    with pytest.raises(SavedQueryError, match="header needs"):
        parse("q", "-- name: other\n-- answers: a\nSELECT 1")


def test_kmo_query_saved_from_the_cli(warehouse, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from kmo.cli import main

    settings, _ = warehouse
    monkeypatch.setenv("KMO_HOME", str(settings.home))
    assert (
        main(["query", "--saved", "who_touched_key", "--param", "key=vault:transit/keys/payments", "--format", "json"])
        == 0
    )
    assert "actor_principal" in capsys.readouterr().out
    assert main(["query", "--saved", "who_touched_key", "--param", "vault:transit/keys/payments"]) == 2
    assert "name=value" in capsys.readouterr().err
    assert main(["query", "--list-saved"]) == 0
    assert "principal_activity  principal=<text> since=<timestamp> until=<timestamp>" in capsys.readouterr().out


def test_the_audit_report_for_a_period_comes_from_the_warehouse(warehouse) -> None:
    from datetime import timedelta

    import jsonschema

    from actions.request import schema
    from analytics.audit_report import audit_report
    from ingest.schema import parse_timestamp
    from streams.policy import load_policy

    settings, counts = warehouse
    start, end = parse_timestamp("2026-11-01T00:00:00Z"), counts["newest"] + timedelta(seconds=1)
    result = audit_report(settings, start, end, load_policy(), notify=timedelta(days=400))
    report = result["auditReport"]
    jsonschema.validate({"operationId": "x", "operation": "audit", "timestamp": "t", **result}, schema("response"))
    assert report["period"]["inventoryBasis"] == "inventory snapshot" and report["keysInventoried"] == counts["keys"]
    violations = run_saved(settings, "findings_summary", {"since": "2026-11-01T00:00:00Z"}).to_pylist()
    assert report["policyViolations"] == sum(
        r["findings"] for r in violations if r["finding_type"] == "policy-violation"
    )
    assert report["rotationsCompleted"] >= 1  # the fixture's kmo rotation has no provider event beside it
    assert all(k.startswith("arn:aws:kms:") for k in report["unusedKeys"])  # the inventory is the AWS estate
    assert report["expiringKeys"] and all("rotationDue" in k for k in report["expiringKeys"])
    for field in ("keysInventoried", "rotationsCompleted", "policyViolations", "unusedKeys"):
        command = result["evidence"][field].split()
        assert command[:3] == ["kmo", "query", "--saved"]
        params = dict(p.split("=", 1) for p in command[5::2])
        rows = run_saved(settings, command[3], params).to_pylist()
        expected = report[field] if isinstance(report[field], int) else len(report[field])
        assert len(rows) == expected, field  # the evidence query reproduces the number
    earlier = audit_report(settings, start, parse_timestamp("2026-11-29T00:00:00Z"), load_policy())
    assert earlier["auditReport"]["period"]["inventoryBasis"] == "audit logs"  # no snapshot yet at that end


def test_kmo_audit_period_from_the_cli(warehouse, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import json

    from kmo.cli import main

    settings, _ = warehouse
    monkeypatch.setenv("KMO_HOME", str(settings.home))
    assert main(["audit", "--period", "2026-11-28T00:00:00Z/2026-12-01T00:00:00Z"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["operation"] == "audit" and out["auditReport"]["keysInventoried"] > 0
    assert main(["audit", "--period", "2026-12-01T00:00:00Z"]) == 2
    assert "START/END" in capsys.readouterr().err


def test_the_inventory_as_a_cyclonedx_cbom(warehouse, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import json

    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    from analytics.cbom import cbom_from_warehouse
    from kmo.cli import main

    settings, counts = warehouse
    doc = cbom_from_warehouse(settings)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc)) is None  # valid CycloneDX 1.6
    keys = [c for c in doc["components"] if c["cryptoProperties"]["assetType"] == "related-crypto-material"]
    algorithms = {c["bom-ref"]: c for c in doc["components"] if c["cryptoProperties"]["assetType"] == "algorithm"}
    assert len(keys) == counts["keys"]
    for key in keys:
        material = key["cryptoProperties"]["relatedCryptoMaterialProperties"]
        assert material["algorithmRef"] in algorithms and material["state"] == "active" and material["size"] >= 256
    aes = next(a for a in algorithms.values() if a["name"] == "AES-256")
    assert aes["cryptoProperties"]["algorithmProperties"]["certificationLevel"] == ["fips140-3-l3"]  # AWS KMS
    monkeypatch.setenv("KMO_HOME", str(settings.home))
    out = settings.home / "cbom.json"
    assert main(["cbom", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["specVersion"] == "1.6"
    assert f"{counts['keys']} keys" in capsys.readouterr().err


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_days_are_utc_days_at_midnight_and_before_1970_whatever_the_sessions_zone(zone: str) -> None:
    """usage_by_day and usage_by_key compute the day from the epoch (bench/README.md says why): the
    UTC day, as ``date_trunc('day', time AT TIME ZONE 'UTC')`` gives it, on both sides of midnight
    and before 1970 (floor division, not truncation), in any session time zone."""
    from collections import Counter

    import duckdb

    from analytics.warehouse import migrate, rebuild_usage_rollup

    con = duckdb.connect()
    migrate(con)
    con.execute(f"SET TimeZone = '{zone}'")
    stamps = ["2026-11-30 23:59:59.999999+00", "2026-12-01 00:00:00+00", "1969-12-31 23:59:59+00",
              "1969-12-31 00:00:00+00", "1970-01-01 00:00:00+00"]  # fmt: skip
    for i, stamp in enumerate(stamps):
        con.execute(
            "INSERT INTO events (uid, time, source, provider, class_uid, activity_id, type_uid, op, operation,"
            " is_usage, success, key_uri, key_version, actor_principal, ingested_at)"
            " VALUES (?, ?, 'aws.cloudtrail', 'aws', 6003, 1, 600301, 'decrypt', 'Decrypt', true, true, 'k', '1',"
            " ?, now())",
            [f"e{i}", stamp, f"p{i}"],
        )
    rebuild_usage_rollup(con)  # usage_by_key reads the window's whole days from the rollup
    expected = sorted(
        r[0]
        for r in con.execute("SELECT CAST(date_trunc('day', time AT TIME ZONE 'UTC') AS DATE) FROM events").fetchall()
    )
    window = {"start": "1960-01-01T00:00:00Z", "end": "2030-01-01T00:00:00Z"}
    by_day = QUERIES["usage_by_day"]
    rows = con.sql(by_day.sql, params=by_day.bind(window)).to_arrow_table().to_pylist()
    per_day = {r["day"]: r["usage_events"] for r in rows}
    by_key = QUERIES["usage_by_key"]
    params = by_key.bind({"since": window["start"], "until": window["end"]})
    key_days = [r["day"] for r in con.sql(by_key.sql, params=params).to_arrow_table().to_pylist()]
    assert per_day == Counter(expected) and key_days == expected
    assert {str(d): n for d, n in per_day.items()} == {
        "1969-12-31": 2,
        "1970-01-01": 1,
        "2026-11-30": 1,
        "2026-12-01": 1,
    }
