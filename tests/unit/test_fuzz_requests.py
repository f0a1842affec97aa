"""Fuzz the operation interface: random and mutated requests, wrong types, huge values, and bytes
that are not JSON or not UTF-8 reach a clean refusal naming the field, or a valid response. Anything
else escaping (a traceback, a crash) is a bug. Periods and durations get the same treatment."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actions.audit_log import AuditLog
from actions.backends.base import BackendError
from actions.backends.local import LocalKeystore
from actions.execute import execute
from actions.request import RequestError, parse_duration, parse_period, schema

VALID = {
    "operation": "generate",
    "keyType": "data",
    "algorithm": "AES-256",
    "keyManagementSystem": "vault",
    "keyId": "fuzz",
    "rotationPolicy": {"maxAge": "90d", "autoRotate": True, "notifyBefore": "7d"},
    "destructionVerification": True,
    "complianceFrameworks": ["NIST"],
}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80) | st.floats() | st.text(max_size=300),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
mutated = st.builds(
    lambda base, key, value, drop: {k: v for k, v in {**base, key: value}.items() if k != drop},
    st.just(VALID),
    st.sampled_from([*VALID, "extra", "rotationPolicy"]),
    json_values | st.sampled_from(["rotate", "destroy", "audit", "inventory", "policy-check", "x" * 100_000]),
    st.sampled_from([None, "keyType", "algorithm", "operation", "keyId"]),
)
requests = json_values | mutated | st.dictionaries(st.sampled_from([*VALID, "x"]), json_values, max_size=8)


@pytest.fixture(scope="module")
def keystore(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalKeystore, AuditLog]:
    home = tmp_path_factory.mktemp("fuzz")
    return LocalKeystore(home / "ks"), AuditLog(home / "audit.jsonl")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=requests)
def test_requests_get_a_clean_refusal_or_a_valid_response(keystore, doc) -> None:
    store, audit = keystore
    try:
        out = execute(doc, store, audit, actor="fuzz")
    except RequestError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        return
    except BackendError as exc:  # the keystore refused (a name it cannot store, a state): named, clean
        assert exc.reason
        return
    jsonschema.validate(out, schema("response"))


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=2000) | st.text(max_size=500).map(str.encode))
def test_kmo_run_on_arbitrary_bytes_never_crashes(tmp_path_factory, raw: bytes) -> None:
    import contextlib
    import io

    from kmo.cli import main

    path = Path(tmp_path_factory.mktemp("raw")) / "req.json"
    path.write_bytes(raw)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["run", "--request", str(path), "--keystore", str(path.parent / "ks")])
    assert code in (0, 1, 2) and "Traceback" not in err.getvalue()
    if code == 2:
        assert err.getvalue().startswith("kmo")


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(max_size=60) | st.sampled_from(["0d", "-5d", "99999999999999d", "1e9h", "7d ", "", "9" * 400 + "d"])
)
def test_durations_and_periods_parse_or_refuse_cleanly(text: str) -> None:
    try:
        parse_duration(text, "maxAge")
    except RequestError as exc:
        assert "maxAge" in exc.problems[0]
    for period in (text, f"{text}/2026-01-01T00:00:00Z", f"1969-12-31T23:59:59Z/{text}", f"last/{text}",
                   "9999-12-31T23:59:59Z/0001-01-01T00:00:00Z", "1900-01-01T00:00:00Z/9999-12-31T23:59:59Z"):  # fmt: skip
        try:
            start, end = parse_period(period)
        except (ValueError, RequestError):
            continue
        assert end > start
