"""Follow a growing audit log file (``kmo ingest vault --follow PATH``), across rotation and truncation.

Position is (device, inode, byte offset) and is checkpointed only after the records before that
offset are in Kafka. Each poll reads complete lines only (a half-written line waits for the next
poll). Rotation by rename: the old file is drained to its end before the new one is opened, and a
restart finds a rotated file under ``<path>.1`` by its inode. Truncation in place (logrotate
``copytruncate``) is seen as a size below the offset and restarts at 0.

Requests whose response has not appeared within ``unanswered_after`` seconds become events of their
own (see :mod:`ingest.parsers.vault_audit`); pairing state is held across polls.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ingest.checkpoints import CheckpointStore
from ingest.framing import Frame
from ingest.runner import Collector, RunSummary

log = logging.getLogger(__name__)
READ_LIMIT = 8 * 1024 * 1024  # bytes per poll: bounded memory whatever the backlog


@dataclass
class _Position:
    dev: int
    ino: int
    offset: int


class FileTailer:
    """Tails one file into a :class:`Collector`. Not thread-safe; run it in one thread."""

    def __init__(
        self,
        collector: Collector,
        path: Path,
        checkpoints: CheckpointStore,
        *,
        poll_seconds: float = 0.5,
        unanswered_after: float = 60.0,
    ) -> None:
        self.collector = collector
        self.path = Path(path).absolute()
        self.checkpoints = checkpoints
        self.poll_seconds = poll_seconds
        self.unanswered_after = unanswered_after
        self.summary = RunSummary(collector.source)
        self._cursor_name = f"tail/{collector.source}/{self.path}"
        self._fh: IO[bytes] | None = None
        self._pos: _Position | None = None
        self._open_requests: dict[str, tuple[Frame, str, float]] = {}

    # -- positions -------------------------------------------------------------------------------
    def _open(self, path: Path, offset: int) -> bool:
        try:
            fh = open(path, "rb")  # noqa: SIM115 (held open across polls on purpose)
        except FileNotFoundError:
            return False
        st = os.fstat(fh.fileno())
        if offset > st.st_size:
            offset = 0  # truncated while we were away
        fh.seek(offset)
        if self._fh is not None:
            self._fh.close()
        self._fh = fh
        self._pos = _Position(st.st_dev, st.st_ino, offset)
        return True

    def _restore(self) -> None:
        saved = self.checkpoints.get_cursor(self._cursor_name)
        if saved:
            pos = _Position(**json.loads(saved))
            for candidate in (self.path, Path(f"{self.path}.1")):
                try:
                    st = candidate.stat()
                except FileNotFoundError:
                    continue
                if (st.st_dev, st.st_ino) == (pos.dev, pos.ino) and self._open(candidate, pos.offset):
                    return
            log.warning(
                "%s rotated while kmo was stopped and the old file is gone: starting the new one at 0", self.path
            )
        self._open(self.path, 0)

    def _save(self) -> None:
        if self._pos is not None:
            self.checkpoints.save_cursor(self._cursor_name, json.dumps(self._pos.__dict__))

    # -- work ------------------------------------------------------------------------------------
    def poll(self) -> int:
        """Read what is new (draining a rotated file first), produce it, checkpoint. Returns records."""
        if self._fh is None:
            self._restore()
            if self._fh is None:
                return 0
        records = self._read_available()
        try:
            st = self.path.stat()
        except FileNotFoundError:
            st = None
        assert self._pos is not None
        if st is not None and (st.st_dev, st.st_ino) != (self._pos.dev, self._pos.ino):
            records += self._read_available()  # drain the rotated file to its end
            self._open(self.path, 0)
            records += self._read_available()
        elif st is not None and st.st_size < self._pos.offset:
            log.info("%s was truncated: reading it from the start", self.path)
            self._open(self.path, 0)
            records += self._read_available()
        records += self._expire_requests()
        if records:
            self.collector.commit()  # flush + verify every send, then ...
            self._save()  # ... and only then move the checkpoint
        return records

    def _read_available(self) -> int:
        assert self._fh is not None and self._pos is not None
        data = self._fh.read(READ_LIMIT)
        end = data.rfind(b"\n") + 1
        if end == 0:
            self._fh.seek(self._pos.offset)  # only a partial line so far
            return 0
        chunk, start = data[:end], self._pos.offset
        self._fh.seek(start + end)
        text = chunk.decode("utf-8", "surrogateescape")
        name = f"file://{self.path}@{start}"
        count = 0
        for frame in self.collector.framer(text):
            count += 1
            if self.collector.pairing is not None and frame.error is None:
                pid = self.collector.pairing.pair_id(frame.obj)
                if pid and pid[1] == "request":
                    self._open_requests[pid[0]] = (frame, name, time.monotonic())
                elif pid:
                    self._open_requests.pop(pid[0], None)
            self.collector.route(frame, name, None, self.summary)
        self._pos.offset = start + end
        return count

    def _expire_requests(self) -> int:
        now = time.monotonic()
        expired = [k for k, (_, _, seen) in self._open_requests.items() if now - seen >= self.unanswered_after]
        for k in expired:
            frame, name, _ = self._open_requests.pop(k)
            self.collector.unanswered(frame, name, counted=True, summary=self.summary)
        return len(expired)

    def run(self, stop: threading.Event, on_pass: Callable[[RunSummary], None] | None = None) -> RunSummary:
        """Poll until ``stop`` is set; ``on_pass(summary)`` after each poll that read something."""
        try:
            while not stop.is_set():
                if self.poll() and on_pass is not None:
                    on_pass(self.summary)
                stop.wait(self.poll_seconds)
            self.poll()
        finally:
            if self._fh is not None:
                self._fh.close()
        return self.summary
