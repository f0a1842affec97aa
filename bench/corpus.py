"""The benchmark's synthetic CloudTrail corpus: deterministic per seed, realistic records.

Two weeks of the demo estate's KMS traffic (its callers, keys, parameters and error rates; records of
about 1.5 KB) is the template. A corpus of N events walks through it again and again, each pass moved
two weeks later, so time moves forward as it would in a long-running trail, with a fresh ``eventID``
per record (derived from the seed and the record's position: the same bytes for one seed). Records
are cut into delivery files of 1,000, gzip'd, as CloudTrail delivers them.
"""

from __future__ import annotations

import functools
import gzip
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import orjson

from kmo.demo.estate import Estate

FILE_RECORDS = 1000
ESTATE_DAYS = 14
KEYS_PER_ACCOUNT = 40


@functools.cache
def templates(seed: int) -> tuple[list[dict], list[datetime], timedelta]:
    """The estate's KMS records, their times, and the span one pass covers (built once per seed;
    callers copy a record before changing it)."""
    estate = Estate(seed=seed, days=ESTATE_DAYS, keys_per_account=KEYS_PER_ACCOUNT)
    records = [r for r in estate.generate() if r.get("eventSource") == "kms.amazonaws.com"]
    times = [datetime.fromisoformat(r["eventTime"].replace("Z", "+00:00")) for r in records]
    return records, times, timedelta(days=ESTATE_DAYS)


def records(events: int, seed: int, *, start: int = 0) -> Iterator[dict]:
    """Records ``start`` .. ``start + events - 1`` of the seed's endless corpus."""
    base, times, span = templates(seed)
    namespace = uuid.UUID(int=seed)
    for i in range(start, start + events):
        cycle, k = divmod(i, len(base))
        rec = dict(base[k])
        rec["eventID"] = str(uuid.uuid5(namespace, str(i)))
        if cycle:
            rec["eventTime"] = (times[k] + cycle * span).strftime("%Y-%m-%dT%H:%M:%SZ")
        yield rec


def delivery_files(events: int, seed: int) -> Iterator[tuple[bytes, int]]:
    """Gzip'd delivery files of ``FILE_RECORDS`` records, each with its size uncompressed."""
    batch: list[dict] = []
    for rec in records(events, seed):
        batch.append(rec)
        if len(batch) == FILE_RECORDS:
            body = orjson.dumps({"Records": batch})
            yield gzip.compress(body, compresslevel=6, mtime=0), len(body)
            batch = []
    if batch:
        body = orjson.dumps({"Records": batch})
        yield gzip.compress(body, compresslevel=6, mtime=0), len(body)


def write_corpus(directory: Path, events: int, seed: int) -> tuple[list[Path], int]:
    """Write the corpus as CloudTrail names its objects; returns the files and bytes uncompressed."""
    directory.mkdir(parents=True, exist_ok=True)
    paths, raw = [], 0
    for n, (body, size) in enumerate(delivery_files(events, seed)):
        path = directory / f"111111111111_CloudTrail_us-east-1_bench_{n:06d}.json.gz"
        path.write_bytes(body)
        paths.append(path)
        raw += size
    return paths, raw
