"""``kmo query``: answer an analyst's SQL from the warehouse, whether or not the sink is running.

With a sink running, the query goes through its socket (:mod:`analytics.query_server`) and sees
everything committed so far; with none, the DuckDB file is opened read-only. Parameters are always
bound, never formatted into the SQL.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv

from analytics.query_server import QueryRefused, check_read_only
from analytics.warehouse import open_warehouse
from kmo.settings import Settings


class QueryError(RuntimeError):
    """The query failed; the message is DuckDB's (or the refusal's) reason."""


def sink_socket(settings: Settings) -> Path:
    return settings.home / "sink.sock"


def run_query(settings: Settings, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> pa.Table:
    """Run one read-only statement and return its result. ``params`` are bound, never formatted in:
    a sequence for ``?`` placeholders, a mapping for ``$name`` ones (the saved queries).

    Raises:
        QueryError: when the statement is refused or fails, or no warehouse exists yet.
    """
    path = sink_socket(settings)
    if path.exists():
        try:
            return _via_socket(str(path), sql, _bindable(params))
        except (ConnectionRefusedError, FileNotFoundError):
            pass  # a socket left by a killed sink: nobody is writing, read the file directly
    if not settings.warehouse.exists():
        raise QueryError(f"no warehouse at {settings.warehouse} yet: run `kmo sink` (or `make demo`) first")
    try:
        con = open_warehouse(settings.warehouse, read_only=True)
    except Exception as exc:  # duckdb.IOException when another process holds the write lock
        raise QueryError(
            f"the warehouse is locked by another process and no sink socket answers "
            f"(a sink starting up, or one running under another KMO_HOME): {exc}"
        ) from None
    try:
        check_read_only(con, sql)
        return con.sql(sql, params=_bindable(params)).to_arrow_table()
    except QueryRefused as exc:
        raise QueryError(str(exc)) from None
    except Exception as exc:  # duckdb.Error and its many subclasses
        raise QueryError(f"{type(exc).__name__}: {exc}") from None
    finally:
        con.close()


def _bindable(params: Sequence[Any] | Mapping[str, Any]) -> list[Any] | dict[str, Any]:
    return dict(params) if isinstance(params, Mapping) else list(params)


def _via_socket(path: str, sql: str, params: list[Any] | dict[str, Any]) -> pa.Table:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(orjson.dumps({"sql": sql, "params": params}) + b"\n")
        stream = sock.makefile("rb")
        header = orjson.loads(stream.readline())
        if not header.get("ok"):
            raise QueryError(header.get("error", "query failed"))
        return pa.ipc.open_stream(stream).read_all()


def render(table: pa.Table, fmt: str) -> str:
    """Format a result as an aligned ``table``, ``csv`` or ``json`` (one object per row)."""
    if fmt == "csv":
        buf = io.BytesIO()
        pa_csv.write_csv(table, buf)
        return buf.getvalue().decode()
    rows = table.to_pylist()
    if fmt == "json":
        return "\n".join(orjson.dumps(r, default=str).decode() for r in rows)
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}: table, csv or json")
    names = table.column_names
    cells = [[_cell(r[n]) for n in names] for r in rows]
    widths = [max([len(n)] + [len(c[i]) for c in cells]) for i, n in enumerate(names)]
    line = "  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([line, sep, *body, f"({len(rows)} rows)"])


def printable(text: str) -> str:
    """Replace control characters: log fields are attacker-controlled and must never drive the
    analyst's terminal (escape sequences, carriage returns that overwrite a line)."""
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in text)


def _cell(value: Any, limit: int = 80) -> str:
    text = printable("" if value is None else str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"
