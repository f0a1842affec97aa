"""The garbage collector's settings for kmo's long-running stream processes (worker, sink).

Both decode every event into a few dozen small objects and hold large, long-lived state (rule
state, DuckDB's connection, Kafka clients). With CPython's default thresholds (a young-generation
collection every 700 net allocations) the collector ran several hundred times a second under load,
each pass also re-scanning whatever survived the last; decoding alone took 20-30 % longer than with
the collector off (bench/README.md). The state built at start is frozen out of the collector's
sight, and young collections run every ``KMO_GC_GEN0`` (50,000) allocations: cycles are still
collected, a little later. ``KMO_GC_GEN0=0`` keeps CPython's defaults.
"""

from __future__ import annotations

import gc
import os

from kmo.settings import env_int

DEFAULT_GEN0 = 50_000


def tune_for_streaming() -> tuple[int, int, int]:
    """Apply the settings (once, after start-up imports); returns the thresholds in force.

    Raises:
        ConfigError: when ``KMO_GC_GEN0`` is not a whole number from 0 to 10,000,000.
    """
    gen0 = env_int(os.environ, "KMO_GC_GEN0", DEFAULT_GEN0, 0, 10_000_000)
    if gen0 > 0:
        gc.collect()
        gc.freeze()  # what start-up built lives as long as the process: never scanned again
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gen0, gen1, gen2)
    return gc.get_threshold()
