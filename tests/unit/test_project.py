"""Project-level invariants: layout, the compose file, the broker pin, the contract's dependencies."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from kmo.cli import build_parser, parse_args
from streams.broker.embedded import KAFKA_VERSION
from tests.conftest import REPO


@pytest.mark.parametrize("package", ["ingest", "streams", "analytics", "actions", "sql", "kmo"])
def test_generic_package_names_resolve_inside_this_repository(package: str) -> None:
    module = importlib.import_module(package)
    assert Path(module.__file__).resolve().is_relative_to(REPO)


def test_pom_pins_the_kafka_version_the_launcher_expects() -> None:
    pom = (REPO / "streams/broker/pom.xml").read_text()
    assert re.search(r"<kafka.version>([^<]+)</kafka.version>", pom).group(1) == KAFKA_VERSION


def test_the_event_contract_imports_no_framework() -> None:
    """ingest.schema is imported by everything; it must not drag Kafka, Faust or DuckDB along."""
    banned = {"faust", "kafka", "aiokafka", "duckdb", "boto3", "pyarrow"}
    for path in (REPO / "ingest/schema").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in banned, f"{path.name} imports {name}"


def _compose_schema() -> dict:
    # check-jsonschema ships the Compose Specification schema (vendored with its licence); read the
    # file without importing the package (its CLI needs a newer click than faust allows).
    spec = importlib.util.find_spec("check_jsonschema")
    root = Path(next(iter(spec.submodule_search_locations)))
    return json.loads((root / "builtin_schemas/vendor/compose-spec.json").read_text())


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = _compose_schema()
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert errors == []
    broken = {
        **doc,
        "services": {**doc["services"], "sink": {**doc["services"]["sink"], "restart_policy": "x"}},
    }
    assert list(validator.iter_errors(broken)), "the schema must catch a mistake, or this test proves nothing"


def test_compose_runs_only_kmo_commands_that_exist() -> None:
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    kmo_services = {n: s for n, s in doc["services"].items() if s.get("image", "").startswith("kmo")}
    assert {"collector", "sink", "worker"} <= set(kmo_services)
    for name, service in kmo_services.items():
        argv = [a.replace("${KMO_CLOUDTRAIL_S3:-", "").rstrip("}") for a in service["command"]]
        assert argv[0] in commands, f"{name} runs `kmo {argv[0]}`, which does not exist"
        parse_args(argv)  # raises SystemExit on an unknown flag
        assert service["environment"]["KMO_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert doc["services"]["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"


def test_readme_holds_the_two_commands_and_ci_calls_the_test_one() -> None:
    readme = (REPO / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (REPO / ".ci/run").read_text()


def test_every_package_is_listed_for_the_wheel() -> None:
    """Editable installs find any package on disk; a real wheel (the Docker image) ships only those
    listed in pyproject.toml. A package missing from the list works in tests and breaks in production."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(REPO).parts)
        for top in ("kmo", "ingest", "streams", "analytics", "actions", "sql")
        for p in (REPO / top).rglob("__init__.py")
    }
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"
