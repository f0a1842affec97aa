"""The two single-stage limits of issue #8's benchmark, measured on this machine.

    python bench/limits.py [--events 200000] [--seed 11]

1. **Parse limit**: the project's own CloudTrail path over gzip'd delivery files in a tight loop
   (read, decompress, decode, frame, parse, normalise): events/s on one core.
2. **Load limit**: the warehouse writer inserting already-normalised events into a fresh DuckDB file
   (``events_to_arrow`` then ``insert_events``, the sink's own calls, in the sink's default batch of
   20,000): rows/s, with the Arrow conversion timed apart from the insert.

The corpus is deterministic: the demo estate's KMS records (about 1.5 KB each, realistic callers,
keys and parameters) repeated with event ids derived from the seed, in delivery files of 1,000
records. The end-to-end, latency and memory parts of the benchmark are not built yet (issue #8).
Prints a table and one JSON line, and writes bench/results/limits.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
import uuid
from pathlib import Path

from analytics.warehouse import events_to_arrow, insert_events, open_warehouse
from ingest.framing import decode_bytes
from ingest.offline import parse_text
from kmo.demo.estate import Estate

FILE_RECORDS = 1000
BATCH = 20000


def corpus(events: int, seed: int) -> tuple[list[bytes], int]:
    """Gzip'd CloudTrail delivery files holding ``events`` KMS records, the same bytes for one seed,
    and their size uncompressed."""
    templates = [r for r in Estate(seed=seed, days=2).generate() if r.get("eventSource") == "kms.amazonaws.com"]
    namespace = uuid.UUID(int=seed)
    files, raw = [], 0
    for start in range(0, events, FILE_RECORDS):
        records = []
        for i in range(start, min(events, start + FILE_RECORDS)):
            rec = dict(templates[i % len(templates)])
            rec["eventID"] = str(uuid.uuid5(namespace, str(i)))
            records.append(rec)
        body = json.dumps({"Records": records}).encode()
        files.append(gzip.compress(body, mtime=0))
        raw += len(body)
    return files, raw


def parse_limit(files: list[bytes]) -> tuple[list, float]:
    events = []
    start = time.perf_counter()
    for n, body in enumerate(files):
        text = decode_bytes(gzip.decompress(body)).text
        events += [o.event for o in parse_text("aws.cloudtrail", text, f"bench-{n}.json.gz") if o.kind == "event"]
    return events, time.perf_counter() - start


def load_limit(events: list, warehouse: Path) -> tuple[int, float, float]:
    con = open_warehouse(warehouse)
    inserted, arrow_s, insert_s = 0, 0.0, 0.0
    try:
        for start in range(0, len(events), BATCH):
            t0 = time.perf_counter()
            table = events_to_arrow(events[start : start + BATCH])
            t1 = time.perf_counter()
            con.execute("BEGIN TRANSACTION")
            inserted += insert_events(con, table)
            con.execute("COMMIT")
            t2 = time.perf_counter()
            arrow_s, insert_s = arrow_s + (t1 - t0), insert_s + (t2 - t1)
    finally:
        con.close()
    return inserted, arrow_s, insert_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    files, raw = corpus(args.events, args.seed)
    events, parse_s = parse_limit(files)
    assert len(events) == args.events, f"parsed {len(events)} events from {args.events} records"
    with tempfile.TemporaryDirectory(prefix="kmo-bench-") as tmp:
        inserted, arrow_s, insert_s = load_limit(events, Path(tmp) / "warehouse.duckdb")
    assert inserted == args.events, f"inserted {inserted} of {args.events}"
    figures = {
        "events": args.events,
        "corpus_mb_uncompressed": round(raw / 1e6, 1),
        "parse_limit_per_s": round(args.events / parse_s),
        "load_limit_per_s": round(args.events / insert_s),
        "arrow_conversion_per_s": round(args.events / arrow_s),
        "load_with_conversion_per_s": round(args.events / (arrow_s + insert_s)),
    }
    for key, value in figures.items():
        print(f"{key:<28} {value:>12,}" if isinstance(value, int) else f"{key:<28} {value:>12}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "limits.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
