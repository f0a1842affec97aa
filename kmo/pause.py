"""Waiting out a condition outside the process's control (a locked warehouse, a full disk, a broker
that is away), saying why on the first wait and then every 30 s: a stuck process is visible
without flooding its log."""

from __future__ import annotations

import logging
import time


class Pause:
    def __init__(self, logger: logging.Logger, seconds: float) -> None:
        self.logger, self.seconds = logger, seconds
        self.waited, self.said = 0.0, None

    def wait(self, level: int, message: str) -> None:
        if self.said is None or self.waited - self.said >= 30:
            self.logger.log(level, message)
            self.said = self.waited
        time.sleep(self.seconds)
        self.waited += self.seconds
