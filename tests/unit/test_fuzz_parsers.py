"""Fuzz: random and mutated input through decode -> frame -> parse yields only events, skips or
ParseErrors, and every frame is accounted for. Anything else escaping is a bug."""

from __future__ import annotations

import gzip
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.framing import decode_bytes
from ingest.parsers import PAIRING, PARSERS, ParseError, RawRecord, framer_for
from ingest.schema import EncodeError, KeyEvent, decode, encode
from tests.conftest import FIXTURES
from tests.parse_helpers import FIXTURE_SOURCES

SOURCE_DIRS = FIXTURE_SOURCES
SEEDS = [
    (source, p.read_bytes())
    for d, source in SOURCE_DIRS.items()
    for p in sorted((FIXTURES / d).iterdir())
    if ".expected" not in p.name
]
ALL_SOURCES = sorted(PARSERS)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
cloudtrail_ish = st.fixed_dictionaries(
    {
        "eventSource": st.sampled_from(["kms.amazonaws.com", "s3.amazonaws.com"]) | st.text(max_size=5),
        "eventName": st.sampled_from(["Decrypt", "CreateKey", "PutKeyPolicy", "Nope"]) | json_values,
        "eventTime": st.sampled_from(["2026-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "9999-12-31T23:59:59Z"])
        | json_values,
    },
    optional={
        "userIdentity": json_values,
        "resources": json_values,
        "requestParameters": json_values,
        "responseElements": json_values,
        "eventID": json_values,
        "errorCode": json_values,
        "sourceIPAddress": json_values,
        "recipientAccountId": json_values,
    },
)


def run_everything(data: bytes, sources: list[str] | None = None) -> None:
    """Every parser over ``data``: only events, skips, ParseErrors or encode refusals may come out."""
    for source in sources or ALL_SOURCES:
        parse = PARSERS[source]
        for frame in framer_for(source)(decode_bytes(data).text):
            if frame.error is not None:
                assert frame.raw, "an error frame must carry the bytes it could not frame"
                continue
            record = RawRecord(frame.text, frame.obj, f"fuzz#{frame.index}")
            try:
                event = parse(record)
                if source in PAIRING:
                    PAIRING[source].pair_id(frame.obj)
                    PAIRING[source].parse_unanswered(record)
            except ParseError:
                continue
            if event is not None:
                assert isinstance(event, KeyEvent)
                try:
                    wire = encode(event)
                except EncodeError:
                    continue  # the collector dead-letters these with the reason
                assert decode(wire) == event


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    run_everything(data)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 4000), st.binary(min_size=0, max_size=4)), max_size=6),
)
def test_mutated_real_records(seed: tuple[str, bytes], edits: list[tuple[int, bytes]]) -> None:
    source, raw = seed
    data = bytearray(raw)
    for pos, chunk in edits:
        pos %= max(len(data), 1)
        data[pos : pos + len(chunk)] = chunk
    run_everything(bytes(data), [source])
    run_everything(gzip.compress(bytes(data))[: max(10, len(data) // 2)], [source])


@settings(max_examples=300, deadline=None)
@given(st.lists(cloudtrail_ish, max_size=5))
def test_structured_cloudtrail_like_records(records: list[dict]) -> None:
    run_everything(json.dumps({"Records": records}, allow_nan=True).encode(), ["aws.cloudtrail"])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SEEDS), st.data())
def test_structured_mutations_of_every_source(seed: tuple[str, bytes], data: st.DataObject) -> None:
    """Replace one field of a real record with an arbitrary JSON value (types every parser must survive)."""
    source, raw = seed
    text = raw.decode()
    if source == "aws.cloudhsm":
        lines = text.splitlines()
        i = data.draw(st.integers(0, len(lines) - 1))
        lines[i] = lines[i].split(":", 1)[0] + ": " + data.draw(st.text(max_size=30))
        run_everything("\n".join(lines).encode(), [source])
        return
    first = json.loads(text.splitlines()[0]) if not text.lstrip().startswith("[") else json.loads(text)[0]
    key = data.draw(st.sampled_from(sorted(first)))
    first[key] = data.draw(json_values)
    run_everything(json.dumps(first, allow_nan=True).encode(), [source])


def test_deep_nesting_and_huge_numbers_do_not_crash() -> None:
    deep = b'{"Records":[' + b"[" * 5000 + b"]" * 5000 + b"]}"
    run_everything(deep)
    run_everything(b'{"Records":[{"eventSource":"kms.amazonaws.com","eventName":"Decrypt","eventTime":1e999}]}')
    run_everything(
        b'{"Records":[{"eventSource":"kms.amazonaws.com","eventName":"Decrypt","eventTime":"2026-01-01T00:00:00Z","x":'
        + b"9" * 5000
        + b"}]}"
    )
