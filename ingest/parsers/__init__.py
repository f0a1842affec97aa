"""The parser registry: source name -> pure parse function. Explicit, so ``grep`` finds every source
and nothing registers itself on import."""

from __future__ import annotations

from ingest.parsers import cloudtrail
from ingest.parsers.base import ParseError, Parser, RawRecord

PARSERS: dict[str, Parser] = {
    cloudtrail.SOURCE: cloudtrail.parse,
}

__all__ = ["PARSERS", "ParseError", "Parser", "RawRecord"]
