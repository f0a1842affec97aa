"""The Vault/OpenBao socket audit device's receiving end (``kmo ingest vault --listen HOST:PORT``).

Vault waits for an audit device to accept each entry, and can refuse requests when none does, so
the listener must never be slow. It does one thing: append every byte Vault sends to a spool file
(``$KMO_HOME/spool/vault-<port>.log``), flushing as it goes and fsync-ing at most every 200 ms. A
:class:`ingest.tail.FileTailer` ships the spool to Kafka at Kafka's pace: when Kafka is slow the
spool grows on disk; Vault never waits for Kafka.
"""

from __future__ import annotations

import logging
import os
import socketserver
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)


class _Handler(socketserver.BaseRequestHandler):
    server: _SpoolServer

    def handle(self) -> None:
        while True:
            data = self.request.recv(1 << 16)
            if not data:
                return
            self.server.spool(data)


class _SpoolServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], spool_path: Path) -> None:
        super().__init__(address, _Handler)
        spool_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(spool_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._out = os.fdopen(fd, "ab", buffering=0)
        self._lock = threading.Lock()
        self._last_sync = 0.0
        self.received = 0
        # Partial lines from different connections must not interleave: keep per-thread remainders.
        self._partial: dict[int, bytes] = {}

    def spool(self, data: bytes) -> None:
        key = threading.get_ident()
        buf = self._partial.pop(key, b"") + data
        end = buf.rfind(b"\n") + 1
        if end < len(buf):
            self._partial[key] = buf[end:]
        if not end:
            return
        with self._lock:
            self._out.write(buf[:end])
            self.received += end
            now = time.monotonic()
            if now - self._last_sync > 0.2:
                os.fsync(self._out.fileno())
                self._last_sync = now

    def server_close(self) -> None:
        super().server_close()
        with self._lock:
            for rest in self._partial.values():
                self._out.write(rest + b"\n")  # a connection cut mid-line: keep the bytes (they will dead-letter)
            os.fsync(self._out.fileno())
            self._out.close()


class SpoolListener:
    """A TCP listener spooling Vault's socket audit device to a file, in a background thread."""

    def __init__(self, host: str, port: int, spool_path: Path) -> None:
        self.server = _SpoolServer((host, port), spool_path)
        self.address = self.server.server_address
        self.spool_path = spool_path
        self._thread = threading.Thread(target=self.server.serve_forever, name="kmo-vault-socket", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def spool_path(home: Path, port: int) -> Path:
    return home / "spool" / f"vault-{port}.log"
