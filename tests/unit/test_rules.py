"""Every detection rule: its conventions (meta-tests) and its own cases, run through the real
parsers and the engine. A new rule without positive and negative cases fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from types import ModuleType

import pytest

from streams.findings import Category
from streams.rules import load_rules
from streams.rules.base import Rule
from streams.rules.testing import run_case
from tests.conftest import FIXTURES, REPO

RULES = load_rules()
SCOPES = ("any", "aws_kms", "gcp_kms", "azure_kv", "vault", "vault_transit", "pkcs11")
CASES = [(m, c) for m in RULES for c in m.CASES]


def test_every_rule_module_is_loaded() -> None:
    files = {p.stem for p in (REPO / "streams/rules").glob("*.py")} - {"__init__", "base", "helpers", "testing", "doc"}
    assert files == {m.__name__.rsplit(".", 1)[1] for m in RULES}


@pytest.mark.parametrize("module", RULES, ids=lambda m: m.RULE.id)
def test_rule_conventions(module: ModuleType) -> None:
    rule: Rule = module.RULE
    scope, _, behaviour = rule.id.partition(".")
    assert scope in SCOPES and re.fullmatch(r"[a-z0-9_]+", behaviour), rule.id
    assert module.__name__.rsplit(".", 1)[1] == rule.id.replace(".", "_"), "file name must be <scope>_<behaviour>.py"
    assert module.__doc__ and len(module.__doc__) > 60, "a rule explains why it matters in its docstring"
    assert rule.runbook and rule.false_positives and rule.covers
    assert isinstance(rule.category, Category)
    assert callable(getattr(module, "check" if rule.scope == "absence" else "match"))
    fires = {c.fires for c in module.CASES}
    assert fires == {True, False}, "every rule needs a case that fires and one that does not"


def test_rule_ids_are_unique() -> None:
    ids = [m.RULE.id for m in RULES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("module", RULES, ids=lambda m: m.RULE.id)
def test_rules_import_no_stream_framework(module: ModuleType) -> None:
    tree = ast.parse(Path(module.__file__).read_text())
    for node in ast.walk(tree):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
        )
        assert not any(n.split(".")[0] in ("faust", "kafka", "aiokafka", "duckdb") for n in names)


@pytest.mark.parametrize(("module", "case"), CASES, ids=lambda x: x.RULE.id if hasattr(x, "RULE") else x.name)
def test_case(module: ModuleType, case) -> None:
    findings = [f for f in run_case(module, case, FIXTURES) if f.rule_id == module.RULE.id]
    assert bool(findings) is case.fires, f"{module.RULE.id}: case {case.name!r} expected fires={case.fires}"
    for finding in findings:
        doc = finding.to_ocsf()
        assert doc["class_uid"] == 2004 and doc["type_uid"] == 200401
        assert doc["finding_info"]["types"] == [str(module.RULE.category)]
        assert doc["finding_info"]["analytic"]["uid"] == module.RULE.id


def test_detections_doc_is_current() -> None:
    """docs/detections.md (which rule covers which community detection) is generated from the rules."""
    from streams.rules.doc import render

    assert (REPO / "docs/detections.md").read_text() == render(), (
        "run: python -m streams.rules.doc > docs/detections.md"
    )
