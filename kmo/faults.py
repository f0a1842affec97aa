"""Named crash points for fault-injection tests: ``KMO_FAULT=<point>[:<n>]`` kills the process
(``os._exit(137)``, as SIGKILL would) the n-th time execution reaches ``crash_point(<point>)``.

Why in production code: "a crash between writing DuckDB and committing the offset" is the case
that matters, and no external signal can land there reliably. The check is one dict lookup when
the variable is unset.
"""

from __future__ import annotations

import os
import sys

_hits: dict[str, int] = {}


def crash_point(point: str) -> None:
    spec = os.environ.get("KMO_FAULT")
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != point:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] >= int(nth or "1"):
        sys.stderr.write(f"kmo: fault injected at {point}\n")
        sys.stderr.flush()
        os._exit(137)
