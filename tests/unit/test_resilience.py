"""A key manager that throttles or times out mid-rotation: retried with backoff where safe, never
rotated twice, rolled back where a coordinated rotation cannot finish, and never silent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import actions.resilience as resilience
from actions.audit_log import AuditLog
from actions.backends.base import BackendUnavailable, KeySpec, Throttled
from actions.backends.local import LocalKeystore
from actions.coordinated import Participant, rotate_together
from actions.execute import execute
from actions.resilience import OutcomeUnknown, retrying, rotate_once


class Flaky:
    """The local keystore behind a provider that fails on cue: ``script`` maps a method to what its
    next calls do: "throttle" (refuse, nothing done), "lost" (do it, then time out) or "ok"."""

    def __init__(self, inner: LocalKeystore, **script: list[str]) -> None:
        self.inner, self.script, self.calls = inner, script, []
        self.system, self.capabilities = inner.system, inner.capabilities

    def __getattr__(self, method: str) -> Any:
        real = getattr(self.inner, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(method)
            step = (self.script.get(method) or ["ok"]).pop(0) if self.script.get(method) else "ok"
            if step == "throttle":
                raise Throttled("local", method, args[0] if args else None, "ThrottlingException")
            if step == "unavailable":
                raise BackendUnavailable("local", method, args[0] if args else None, "timed out")
            result = real(*args, **kwargs)
            if step == "lost":
                raise BackendUnavailable("local", method, args[0] if args else None, "timed out after sending")
            return result

        return call


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr(resilience.time, "sleep", waits.append)
    return waits


@pytest.fixture
def store(tmp_path: Path) -> LocalKeystore:
    ks = LocalKeystore(tmp_path / "ks")
    ks.generate(KeySpec(name="k", key_type="data", algorithm="AES-256"))
    return ks


def test_throttling_is_retried_with_backoff_and_rotates_once(store, no_waiting) -> None:
    flaky = Flaky(store, rotate=["throttle", "throttle", "ok"])
    info, attempts = rotate_once(flaky, "k")
    assert (info.version, attempts) == (2, 3) and no_waiting == [0.5, 1.0]
    assert store.describe("k").versions == [1, 2]


def test_a_rotation_whose_answer_was_lost_is_not_repeated(store) -> None:
    flaky = Flaky(store, rotate=["lost", "ok"])
    info, attempts = rotate_once(flaky, "k")
    assert (info.version, attempts) == (2, 1) and flaky.calls.count("rotate") == 1
    assert store.describe("k").versions == [1, 2]  # one rotation, not two


def test_an_unreadable_outcome_is_said_not_guessed(store, tmp_path: Path) -> None:
    flaky = Flaky(store, rotate=["lost"], describe=["ok", "ok"] + ["unavailable"] * 8)
    audit = AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises(OutcomeUnknown, match="may or may not have rotated"):
        execute({"operation": "rotate", "keyId": "k"}, flaky, audit, actor="ops")
    last = list(audit.entries())[-1]
    assert last["outcome"] == "failed" and "may or may not have rotated" in last["error"]
    assert store.describe("k").version == 2  # it did rotate; the record says the outcome was unknown


def test_giving_up_after_the_attempts(store, no_waiting) -> None:
    flaky = Flaky(store, rotate=["throttle"] * 4)
    with pytest.raises(Throttled):
        rotate_once(flaky, "k")
    assert store.describe("k").version == 1 and len(no_waiting) == 3
    assert retrying(lambda: 42) == 42


def test_a_coordinated_rotation_rolls_back_when_one_side_keeps_failing(store, tmp_path: Path) -> None:
    other = LocalKeystore(tmp_path / "other")
    other.generate(KeySpec(name="k", key_type="data", algorithm="AES-256"))
    audit = AuditLog(tmp_path / "audit.jsonl")
    failing = Flaky(other, rotate=["unavailable"] * 4)
    with pytest.raises(BackendUnavailable):
        rotate_together([Participant(store, "k"), Participant(failing, "k")], audit, "ops")
    assert store.describe("k").version == 1 and other.describe("k").version == 1  # rolled back, not half-done
    outcomes = [e["outcome"] for e in audit.entries()]
    assert outcomes[-2:] == ["failed", "succeeded"] and json.dumps(list(audit.entries())).count("rollback") == 1
