"""Named crash points for fault-injection tests: ``KMO_FAULT=<point>[:<n>]`` kills the process
(``os._exit(137)``, as SIGKILL would) the n-th time execution reaches ``crash_point(<point>)``, or,
where the point names an ``act``, does that instead (a fault that is not a crash: a consumer that
stops fetching).

Why in production code: "a crash between writing DuckDB and committing the offset" is the case
that matters, and no external signal can land there reliably. The check is one dict lookup when
the variable is unset.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

_hits: dict[str, int] = {}


def crash_point(point: str, act: Callable[[], None] | None = None) -> None:
    spec = os.environ.get("KMO_FAULT")
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != point:
        return
    _hits[point] = _hits.get(point, 0) + 1
    n = int(nth or "1")
    if _hits[point] < n or (act is not None and _hits[point] > n):  # an act is done once
        return
    sys.stderr.write(f"kmo: fault injected at {point}\n")
    sys.stderr.flush()
    if act is not None:
        act()
        return
    os._exit(137)
