"""Golden tests for every source: each raw fixture file in tests/fixtures/<source>/ becomes exactly
the events in its ``.expected.json`` (a list, one per record; raw_data checked separately).

Regenerate after a deliberate change with ``pytest --update-goldens`` and review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.framing import decode_bytes
from ingest.parsers import PARSERS, ParseError, RawRecord, framer_for
from ingest.schema import decode, encode
from tests.conftest import FIXTURES
from tests.parse_helpers import FIXTURE_SOURCES

SOURCES = FIXTURE_SOURCES
CASES = sorted(
    p for d in SOURCES for p in (FIXTURES / d).iterdir() if p.is_file() and not p.name.endswith(".expected.json")
)


def normalise(source: str, path: Path) -> list[dict]:
    out = []
    text = decode_bytes(path.read_bytes()).text
    for frame in framer_for(source)(text):
        assert frame.error is None, f"{path.name}#{frame.index}: {frame.error}"
        try:
            event = PARSERS[source](RawRecord(frame.text, frame.obj, f"fixture:{path.name}#{frame.index}"))
        except ParseError as exc:
            out.append({"parse_error": exc.reason})
            continue
        if event is None:
            out.append({"skipped": True})
            continue
        assert event.raw == frame.text and frame.text in text  # verbatim
        assert decode(encode(event)) == event
        doc = event.to_ocsf()
        doc.pop("raw_data")
        out.append(doc)
    return out


def test_every_source_has_fixtures() -> None:
    assert {p.parent.name for p in CASES} == set(SOURCES)


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden(path: Path, request: pytest.FixtureRequest) -> None:
    got = normalise(SOURCES[path.parent.name], path)
    expected = path.with_name(path.name + ".expected.json")
    if request.config.getoption("--update-goldens"):
        expected.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    assert expected.exists(), f"no golden for {path.name}: review the output and run with --update-goldens"
    assert got == json.loads(expected.read_text())


def test_goldens_have_no_orphans() -> None:
    goldens = {p for d in SOURCES for p in (FIXTURES / d).glob("*.expected.json")}
    assert goldens == {p.with_name(p.name + ".expected.json") for p in CASES}
