"""The parser registry: source name -> pure parse function. Explicit, so ``grep`` finds every source
and nothing registers itself on import."""

from __future__ import annotations

from ingest.parsers import azure_keyvault, cloudtrail, gcp_audit, vault_audit
from ingest.parsers.base import Pairing, ParseError, Parser, RawRecord

PARSERS: dict[str, Parser] = {
    cloudtrail.SOURCE: cloudtrail.parse,
    vault_audit.SOURCE: vault_audit.parse,
    gcp_audit.SOURCE: gcp_audit.parse,
    azure_keyvault.SOURCE: azure_keyvault.parse,
}

# Sources whose operations span two entries (see ingest.parsers.base.Pairing).
PAIRING: dict[str, Pairing] = {
    vault_audit.SOURCE: vault_audit,  # type: ignore[dict-item]  # a module satisfying the protocol
}

# `kmo ingest <name>` -> source
CLI_SOURCES = {
    "cloudtrail": cloudtrail.SOURCE,
    "vault": vault_audit.SOURCE,
    "gcp": gcp_audit.SOURCE,
    "azure": azure_keyvault.SOURCE,
}

__all__ = ["CLI_SOURCES", "PAIRING", "PARSERS", "Pairing", "ParseError", "Parser", "RawRecord"]
