"""Notice partitions a consumer owns that have records waiting but make no progress.

Why this exists: in the chaos run (tests/faults/chaos.py) a Faust worker, after several kills, a
broker restart and rebalances, sometimes came up owning every partition yet fetched only some of
them: no error, no warning, the group "Stable", lag growing on the rest for good (Faust issues #471
and #629 describe the same). A key-audit pipeline that silently stops watching part of the estate
is worse than one that crashes, so the worker checks itself: a partition whose committed offset has
not moved for ``stall_seconds`` while records wait is stalled. Plain Python with no Faust or Kafka
import, so the rule is unit-tested; the worker feeds it offsets and decides what to do.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field


@dataclass
class StallWatch:
    stall_seconds: float
    _last: dict[Hashable, int] = field(default_factory=dict)
    _since: dict[Hashable, float] = field(default_factory=dict)

    def observe(self, now: float, offsets: Mapping[Hashable, tuple[int, int]]) -> list[Hashable]:
        """``offsets`` maps each partition owned now to (committed, end); returns the stalled ones.

        A partition is stalled when records wait (end > committed) and its committed offset is the
        same as it was ``stall_seconds`` ago. Partitions no longer owned are forgotten, so one that
        comes back after a rebalance starts a fresh clock.
        """
        for tp in set(self._last) - set(offsets):
            self._last.pop(tp, None)
            self._since.pop(tp, None)
        stalled = []
        for tp, (committed, end) in offsets.items():
            if end <= committed or self._last.get(tp) != committed:
                self._last[tp], self._since[tp] = committed, now
                continue
            if now - self._since[tp] >= self.stall_seconds:
                stalled.append(tp)
        return stalled

    def reset(self) -> None:
        """Start every clock again (after a rebalance, or a remedy was tried)."""
        self._last.clear()
        self._since.clear()
