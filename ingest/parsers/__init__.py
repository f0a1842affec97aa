"""The parser registry: source name -> pure parse function. Explicit, so ``grep`` finds every source
and nothing registers itself on import."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ingest.framing import Frame, frame_records, frame_text_blocks
from ingest.parsers import azure_keyvault, cloudhsm, cloudtrail, gcp_audit, luna, vault_audit
from ingest.parsers.base import Pairing, ParseError, Parser, RawRecord, Sequenced

PARSERS: dict[str, Parser] = {
    cloudtrail.SOURCE: cloudtrail.parse,
    vault_audit.SOURCE: vault_audit.parse,
    gcp_audit.SOURCE: gcp_audit.parse,
    azure_keyvault.SOURCE: azure_keyvault.parse,
    cloudhsm.SOURCE: cloudhsm.parse,
    luna.SOURCE: luna.parse,
}

# How each source's bytes split into records (JSON framing unless named here).
FRAMERS: dict[str, Callable[[str], Iterator[Frame]]] = {
    cloudhsm.SOURCE: frame_text_blocks,
}

# Sources with gap-free sequence numbers (see ingest.parsers.base.Sequenced).
SEQUENCED: dict[str, Sequenced] = {
    cloudhsm.SOURCE: cloudhsm,  # type: ignore[dict-item]
}


def framer_for(source: str) -> Callable[[str], Iterator[Frame]]:
    return FRAMERS.get(source, frame_records)


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
    "cloudhsm": cloudhsm.SOURCE,
    "luna": luna.SOURCE,
}

__all__ = [
    "CLI_SOURCES",
    "FRAMERS",
    "PAIRING",
    "PARSERS",
    "SEQUENCED",
    "Pairing",
    "ParseError",
    "Parser",
    "RawRecord",
    "Sequenced",
    "framer_for",
]
