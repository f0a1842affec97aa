"""kmo analytics: the DuckDB audit warehouse (one writer: the sink), and queries over it."""
