"""Compliance reports from the warehouse: per framework, each control evaluated against what the
warehouse holds for a period, each result with the saved query that shows its evidence.

A control is ``pass``, ``fail`` or ``not-evaluable`` (the warehouse holds nothing that could show
it either way). A framework is compliant only when every control passes: an auditor cannot accept
"no evidence" as "no problem". The JSON is the specification's ``complianceStatus`` (framework,
compliant, findings) with the controls behind it; :mod:`analytics.report_html` renders the HTML.

The numbers (cryptoperiods, algorithm status dates) are the ones in ``../shared/design/key-managers.md``
and the policy file; which rule's findings evidence which control is declared in ``CONTROLS``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from actions.compliance import fips_status
from actions.request import frameworks
from analytics.saved_queries import command as _cmd
from analytics.saved_queries import run_saved
from ingest.schema import format_timestamp
from kmo.settings import Settings
from streams.policy import Policy

FRAMEWORKS = frameworks()  # the specification's complianceFrameworks
APPROVED = frozenset(
    {"AES-256", "RSA-2048", "RSA-4096", "ECDSA-P256", "ECDSA-P384", "Ed25519"}
)  # FIPS 186-5, SP 800-38D
# SP 800-131A Rev. 2 / SP 800-57 Pt 1 Rev. 5: 112-bit strength (RSA-2048) protects new data through 2030
RSA_2048_UNTIL = datetime(2031, 1, 1, tzinfo=UTC)
STALE_SOURCE = timedelta(hours=24)
SUBSTITUTION_RULES = frozenset(
    {
        "aws_kms.key_policy_public",
        "aws_kms.policy_lockout_bypass",
        "aws_kms.imported_key_material",
        "aws_kms.grant_to_outside_account",
        "vault.transit_key_made_exportable",
        "any.key_export",
    }
)
INTEGRITY_RULES = frozenset({"any.audit_logging_reduced", "any.audit_sequence_gap"})
STATE_RULES = frozenset({"any.use_of_unusable_key"})
ACCESS_TYPES = frozenset({"anomalous-usage"})


@dataclass
class ControlResult:
    framework: str
    control: str
    title: str
    status: str  # pass | fail | not-evaluable
    summary: str
    evidence: str  # the command that shows the rows
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in f"{self.framework}-{self.control}").strip("-").lower()

    def as_finding(self) -> dict[str, Any]:
        return {
            "control": self.control,
            "title": self.title,
            "status": self.status,
            "summary": self.summary,
            "evidence": self.evidence,
            "evidenceRows": len(self.rows),
        }


class Evidence:
    """What the warehouse says about the period, fetched once and shared by every control."""

    def __init__(self, settings: Settings, start: datetime, end: datetime, policy: Policy) -> None:
        self.start, self.end, self.policy = start, end, policy
        s, e = format_timestamp(start), format_timestamp(end)
        self.s, self.e = s, e
        self.inventory = run_saved(settings, "audit_inventory", {"as_of": e}).to_pylist()
        self.findings = run_saved(settings, "findings_in_period", {"start": s, "end": e}).to_pylist()
        # one read of kmo's actions covers the period and the year before its end (PCI-DSS 12.3.3)
        year_before = end - timedelta(days=365)
        window = format_timestamp(min(start, year_before))
        actions = run_saved(settings, "kmo_actions", {"start": window, "end": e}).to_pylist()
        self.actions = [a for a in actions if a["time"] >= start]
        self.reviews = [
            a
            for a in actions
            if a["time"] >= year_before and a["operation"] in ("audit", "policy-check") and a["outcome"] == "succeeded"
        ]
        self.health = run_saved(settings, "source_health", {}).to_pylist()
        self.unused = run_saved(settings, "audit_unused", {"start": s, "end": e}).to_pylist()
        self.usage = run_saved(settings, "usage_by_day", {"start": s, "end": e}).to_pylist()
        self.basis = {k["basis"] for k in self.inventory}

    def findings_of(self, rules: frozenset[str] = frozenset(), types: frozenset[str] = frozenset()) -> list[dict]:
        return [f for f in self.findings if f["rule_id"] in rules or f["finding_type"] in types]

    def overdue(self) -> list[dict[str, Any]]:
        out = []
        for key in self.inventory:
            days = self.policy.rotation_days.get(key["key_type"] or "")
            if days and key["current_since"] is not None:
                age = (self.end - key["current_since"]).days
                if age > days:
                    out.append(
                        {
                            "key_id": key["key_id"],
                            "key_type": key["key_type"],
                            "age_days": age,
                            "cryptoperiod_days": days,
                        }
                    )
        return out

    def stale_sources(self) -> list[dict[str, Any]]:
        return [
            h
            for h in self.health
            if h["last_status"] != "ok" or h["last_heartbeat"] is None or self.end - h["last_heartbeat"] > STALE_SOURCE
        ]


def _from_rows(
    framework: str,
    control: str,
    title: str,
    rows: list[dict],
    evidence: str,
    bad: str,
    good: str,
    evaluable: bool = True,
) -> ControlResult:
    """The common shape: rows are the violations; none means pass (when the evidence could show any)."""
    if not evaluable:
        summary = "not evaluable: the warehouse holds nothing for the period that could show this either way"
        return ControlResult(framework, control, title, "not-evaluable", summary, evidence, rows)
    status = "fail" if rows else "pass"
    return ControlResult(framework, control, title, status, bad.format(n=len(rows)) if rows else good, evidence, rows)


def _cryptoperiods(ev: Evidence, framework: str, control: str) -> ControlResult:
    keyed = any(k["key_type"] for k in ev.inventory)
    return _from_rows(
        framework,
        control,
        "Keys are rotated within their cryptoperiod (SP 800-57 Pt 1 §5.3)",
        ev.overdue(),
        _cmd("audit_inventory", as_of=ev.e) + " (current_since + the policy's rotation period per key type)",
        "{n} key(s) past their cryptoperiod at the end of the period",
        "every inventoried key is within its cryptoperiod" if keyed else "no inventory with key types to measure",
        evaluable=keyed,
    )


def _coverage(ev: Evidence, framework: str, control: str, title: str) -> ControlResult:
    return _from_rows(
        framework,
        control,
        title,
        ev.stale_sources(),
        _cmd("source_health"),
        "{n} audit source(s) silent, degraded or failing at the end of the period",
        f"{len(ev.health)} audit source(s) reported ok within {STALE_SOURCE} of the end",
        evaluable=bool(ev.health),
    )


def evaluate(settings: Settings, framework: str, start: datetime, end: datetime, policy: Policy) -> list[ControlResult]:
    """Every control of ``framework`` for ``[start, end)``."""
    return controls(Evidence(settings, start, end, policy), framework)


def controls(ev: Evidence, framework: str) -> list[ControlResult]:
    """Every control of ``framework`` over evidence already gathered (one gathering serves all frameworks)."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {', '.join(FRAMEWORKS)}, not {framework!r}")
    end = ev.end
    findings_cmd = _cmd("findings_in_period", start=ev.s, end=ev.e)
    inventory_cmd = _cmd("audit_inventory", as_of=ev.e)
    algorithms = [k for k in ev.inventory if k.get("key_type") is not None]
    results: list[ControlResult] = []
    if framework == "NIST":
        results.append(_cryptoperiods(ev, "NIST", "SP 800-57 Pt1 5.3"))
        results.append(
            _from_rows(
                "NIST",
                "SP 800-57 Pt1 7",
                "Keys are used only in states that allow it",
                ev.findings_of(STATE_RULES),
                findings_cmd,
                "{n} use(s) of keys that were disabled, deactivated or pending destruction",
                "no use of a key outside the active state was seen",
            )
        )
        results.append(_algorithm_status(ev, inventory_cmd))
    elif framework == "FIPS-140-3":
        systems = sorted({k["system"] for k in ev.inventory})
        unvalidated = []
        for system in systems:
            validated, what = fips_status(system, os.environ.get("KMO_HSM_FIPS_CERT"))
            if validated is not True:
                unvalidated.append({"system": system, "validated": validated, "module": what})
        results.append(
            _from_rows(
                "FIPS-140-3",
                "FIPS 140-3 7",
                "Keys are held in validated cryptographic modules",
                unvalidated,
                inventory_cmd,
                "{n} system(s) whose module is not (known to be) FIPS 140-3 validated",
                f"every system holding keys ({', '.join(systems)}) uses a validated module",
                evaluable=bool(systems),
            )
        )
        unapproved = [k for k in ev.inventory if k.get("key_type") is not None and _algorithm(k) not in APPROVED]
        results.append(
            _from_rows(
                "FIPS-140-3",
                "SP 800-140C",
                "Only approved algorithms",
                unapproved,
                inventory_cmd,
                "{n} key(s) with an algorithm outside the approved list",
                "every inventoried key uses an approved algorithm",
                evaluable=bool(algorithms),
            )
        )
    elif framework == "PCI-DSS":
        inventoried = "inventory snapshot" in ev.basis
        results.append(
            ControlResult(
                "PCI-DSS",
                "3.6.1.1",
                "An inventory of cryptographic keys is maintained",
                "pass" if inventoried else "fail",
                f"{len(ev.inventory)} key(s) in an inventory snapshot taken by the end of the period"
                if inventoried
                else "no inventory snapshot was published by the end of the period (kmo inventory --all --publish)",
                inventory_cmd,
                ev.inventory,
            )
        )
        generated = [a for a in ev.actions if a["operation"] == "generate" and a["outcome"] == "succeeded"]
        unrecorded = [a for a in generated if '"generation"' not in (a["entry"] or "")]
        results.append(
            _from_rows(
                "PCI-DSS",
                "3.7.1",
                "Strong keys are generated, and how is recorded",
                unrecorded,
                _cmd("kmo_actions", start=ev.s, end=ev.e),
                "{n} generation(s) without a generation record",
                f"{len(generated)} key generation(s), each with its entropy source and module recorded",
                evaluable=bool(generated),
            )
        )
        results.append(_cryptoperiods(ev, "PCI-DSS", "3.7.4"))
        results.append(
            _from_rows(
                "PCI-DSS",
                "3.7.5",
                "Keys no longer needed are retired or replaced",
                ev.unused,
                _cmd("audit_unused", start=ev.s, end=ev.e),
                "{n} key(s) held but unused during the period: retire or justify",
                "every key held was used during the period",
                evaluable=bool(ev.inventory),
            )
        )
        destructions = [a for a in ev.actions if a["operation"] == "destroy" and a["outcome"] == "destroyed"]
        results.append(
            _from_rows(
                "PCI-DSS",
                "3.7.6",
                "Destruction under dual control",
                [a for a in destructions if _approvals(a) < 2],
                _cmd("kmo_actions", start=ev.s, end=ev.e),
                "{n} destruction(s) without two approvals",
                f"{len(destructions)} destruction(s), each approved by two custodians",
                evaluable=bool(destructions),
            )
        )
        results.append(
            _from_rows(
                "PCI-DSS",
                "3.7.7",
                "Unauthorised substitution of keys is prevented",
                ev.findings_of(SUBSTITUTION_RULES),
                findings_cmd,
                "{n} finding(s) of key policies opened, material imported or exported, or keys granted away",
                "no key policy, import, export or grant finding in the period",
            )
        )
        results.append(
            ControlResult(
                "PCI-DSS",
                "12.3.3",
                "Cryptographic use is reviewed at least once every 12 months",
                "pass" if ev.reviews else "fail",
                f"{len(ev.reviews)} kmo audit/policy-check run(s) in the 12 months before the end"
                if ev.reviews
                else "no kmo audit or policy-check in the 12 months before the end",
                _cmd("kmo_actions", start=format_timestamp(end - timedelta(days=365)), end=ev.e),
                ev.reviews,
            )
        )
    elif framework == "HIPAA":
        results.append(_coverage(ev, "HIPAA", "164.312(b)", "Audit controls record activity on systems holding keys"))
        results.append(
            _from_rows(
                "HIPAA",
                "164.312(c)(1)",
                "Audit records are protected from alteration and loss",
                ev.findings_of(INTEGRITY_RULES),
                findings_cmd,
                "{n} finding(s) of audit logging reduced or records missing",
                "no audit logging reduction or sequence gap in the period",
            )
        )
        results.append(
            _from_rows(
                "HIPAA",
                "164.312(a)(2)(iv)",
                "Encryption keys are used only while valid",
                ev.findings_of(STATE_RULES),
                findings_cmd,
                "{n} use(s) of keys outside the active state",
                "no use of an invalid key",
            )
        )
        results.append(
            _from_rows(
                "HIPAA",
                "164.312(d)",
                "Entities using keys are who they should be",
                ev.findings_of(types=ACCESS_TYPES),
                findings_cmd,
                "{n} anomalous-usage finding(s)",
                "no anomalous key usage",
            )
        )
    else:  # SOC2
        results.append(
            _from_rows(
                "SOC2",
                "CC6.1",
                "Logical access to keys is restricted",
                ev.findings_of(SUBSTITUTION_RULES, ACCESS_TYPES),
                findings_cmd,
                "{n} finding(s) of anomalous access or access opened up",
                "no anomalous or widened key access",
            )
        )
        results.append(_coverage(ev, "SOC2", "CC7.2", "Key activity is monitored for anomalies"))
    return results


def _algorithm(key: dict[str, Any]) -> str | None:
    return key.get("algorithm")


def _approvals(action: dict[str, Any]) -> int:
    try:
        return int(json.loads(action["entry"] or "{}").get("approvals") or 0)
    except (ValueError, TypeError):
        return 0


def _algorithm_status(ev: Evidence, inventory_cmd: str) -> ControlResult:
    keys = [k for k in ev.inventory if k.get("algorithm")]
    rows = []
    for key in keys:
        algorithm = key["algorithm"]
        if algorithm not in APPROVED:
            rows.append({"key_id": key["key_id"], "algorithm": algorithm, "status": "not approved"})
        elif algorithm == "RSA-2048" and ev.end >= RSA_2048_UNTIL:
            rows.append(
                {"key_id": key["key_id"], "algorithm": algorithm, "status": "disallowed for new protection after 2030"}
            )
    return _from_rows(
        "NIST",
        "SP 800-131A Rev2",
        "Algorithms and key sizes are acceptable at the period's end",
        rows,
        inventory_cmd,
        "{n} key(s) with an algorithm not acceptable on that date",
        "every inventoried key's algorithm is acceptable on that date",
        evaluable=bool(keys),
    )


def compliance_status(framework: str, results: list[ControlResult]) -> dict[str, Any]:
    """The specification's ``complianceStatus``: compliant only when every control passes."""
    return {
        "framework": framework,
        "compliant": bool(results) and all(r.status == "pass" for r in results),
        "findings": [r.as_finding() for r in results],
    }


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def evidence_csv(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV a spreadsheet opens inert: a cell that would start a formula gets a leading quote."""
    out = io.StringIO()
    columns = sorted({c for r in rows for c in r}) if rows else ["(no rows)"]
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _inert(row.get(c)) for c in columns})
    return out.getvalue()


def _inert(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text
