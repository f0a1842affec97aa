"""Write CloudTrail records the way CloudTrail delivers them to S3.

Layout ``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>`` with file names
``<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<id>.json.gz``: one gzip'd ``{"Records":[...]}``
file per account, region and delivery period, compact JSON. gzip headers carry no timestamp, so
the same estate always produces the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def object_key(account: str, region: str, period: str, body: bytes) -> str:
    """The S3 key CloudTrail would use (the id is derived from the content: deterministic)."""
    y, m, d = period[0:4], period[4:6], period[6:8]
    digest = hashlib.sha256(body).hexdigest()[:16]
    name = f"{account}_CloudTrail_{region}_{period}Z_{digest}.json.gz"
    return f"AWSLogs/{account}/CloudTrail/{region}/{y}/{m}/{d}/{name}"


def render_files(records: Iterable[dict[str, Any]], *, period_minutes: int = 60) -> dict[str, bytes]:
    """Group records into delivery files; returns {object key: gzip bytes}."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        t = rec["eventTime"]  # 2026-11-09T03:12:00Z
        minute = int(t[14:16]) // period_minutes * period_minutes
        period = f"{t[0:4]}{t[5:7]}{t[8:10]}T{t[11:13]}{minute:02d}"
        groups[(rec["recipientAccountId"], rec["awsRegion"], period)].append(rec)
    files: dict[str, bytes] = {}
    for (account, region, period), recs in sorted(groups.items()):
        text = json.dumps({"Records": recs}, separators=(",", ":")).encode()
        body = gzip.compress(text, mtime=0)
        files[object_key(account, region, period, text)] = body
    return files


def write_files(root: Path, files: dict[str, bytes]) -> int:
    """Write rendered files under ``root``; returns bytes written."""
    total = 0
    for key, body in files.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        total += len(body)
    return total
