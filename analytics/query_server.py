"""Analysts query the warehouse while the sink writes it, through the sink.

DuckDB admits one read-write process per file, and the sink is it. Rather than copying snapshots
(cost grows with the warehouse) or exporting Parquet (stale, many small files), the sink serves
read-only queries on a Unix socket (``$KMO_HOME/sink.sock``, 0600: only its owner connects). Each
query runs on its own DuckDB cursor, so it sees the last committed batch (MVCC) and never blocks
the writer. Only single SELECT/EXPLAIN statements are accepted.

Protocol: the client sends one JSON line ``{"sql": ..., "params": [...] | {...}}``; the server answers one
JSON line (``{"ok": true}`` or ``{"ok": false, "error": ...}``) followed, on success, by the result
as an Arrow IPC stream.
"""

from __future__ import annotations

import logging
import os
import socketserver
import threading
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

log = logging.getLogger(__name__)

READ_ONLY_TYPES = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})
MAX_REQUEST_BYTES = 1024 * 1024


class QueryRefused(ValueError):
    """A query the read-only interface will not run."""


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Accept exactly one SELECT or EXPLAIN statement.

    Raises:
        QueryRefused: for anything else (several statements, DDL, DML, ATTACH, COPY, SET, PRAGMA).
    """
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(f"cannot parse the query: {exc}") from None
    if len(statements) != 1:
        raise QueryRefused(f"send exactly one statement, got {len(statements)}")
    kind = statements[0].type
    if kind not in READ_ONLY_TYPES:
        raise QueryRefused(f"the warehouse is read-only here: {kind.name} statements are refused")


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        line = self.rfile.readline(MAX_REQUEST_BYTES)
        try:
            request = orjson.loads(line)
            sql = request["sql"]
            params: list[Any] | dict[str, Any] = request.get("params") or []
            if not isinstance(sql, str) or not isinstance(params, list | dict):
                raise QueryRefused("sql must be a string and params a list (or an object of named parameters)")
            cursor = self.server.con.cursor()
            try:
                check_read_only(cursor, sql)
                table = cursor.sql(sql, params=params).to_arrow_table()
            finally:
                cursor.close()
        except (QueryRefused, duckdb.Error, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            self.wfile.write(orjson.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}) + b"\n")
            return
        self.wfile.write(b'{"ok":true}\n')
        with pa.ipc.new_stream(self.wfile, table.schema) as writer:
            writer.write_table(table)


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        super().__init__(path, _Handler)


class QueryServer:
    """Serves read-only queries on ``path`` from a background thread until :meth:`close`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        path.unlink(missing_ok=True)  # a stale socket from a killed sink
        old_umask = os.umask(0o177)  # the socket is created 0600 from the start, no race
        try:
            self._server = _Server(str(path), con)
        finally:
            os.umask(old_umask)
        self.path = path
        self._thread = threading.Thread(target=self._server.serve_forever, name="kmo-query", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.path.unlink(missing_ok=True)
