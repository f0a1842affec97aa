"""The benchmark's corpus must be the same bytes for a seed (figures compare across runs and
changes), with unique event ids and time moving forward from one pass over the estate to the next."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import corpus
import pipeline


def test_same_seed_same_bytes_other_seed_other_ids() -> None:
    first = [body for body, _ in corpus.delivery_files(2500, 3)]
    assert first == [body for body, _ in corpus.delivery_files(2500, 3)]
    assert len(first) == 3  # 1,000 a file, the last one short
    records = json.loads(gzip.decompress(first[-1]))["Records"]
    assert len(records) == 500
    other = {r["eventID"] for r in corpus.records(100, 4)}
    assert not other & {r["eventID"] for r in corpus.records(100, 3)}


def test_each_pass_is_later_than_the_one_before_and_ids_never_repeat() -> None:
    base, _, _ = corpus.templates(3)
    n = len(base)
    one_pass = list(corpus.records(3, 3, start=0))
    next_pass = list(corpus.records(3, 3, start=n))
    assert [r["eventName"] for r in one_pass] == [r["eventName"] for r in next_pass]
    assert all(b["eventTime"] > a["eventTime"] for a, b in zip(one_pass, next_pass, strict=True))
    ids = [r["eventID"] for r in corpus.records(2000, 3, start=n - 1000)]
    assert len(set(ids)) == len(ids)


def test_percentiles_pick_from_the_sorted_values() -> None:
    values = [i / 1000 for i in range(1, 101)]  # 1 .. 100 ms
    got = pipeline.percentiles("x", values)
    assert got == {"x_p50_ms": 51.0, "x_p99_ms": 100.0, "x_max_ms": 100.0}
    assert pipeline.percentiles("x", []) == {"x_p50_ms": None, "x_p99_ms": None}
