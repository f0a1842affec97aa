"""Which backend a request runs against, from its ``keyManagementSystem`` and the environment.

Credentials come from each client library's own environment (``VAULT_ADDR``/``VAULT_TOKEN`` for
hvac), so kmo never reads, stores or prints them itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from actions.backends.base import KeyBackend
from actions.execute import NotBuilt
from actions.request import RequestError


def backend_for(doc: dict[str, Any], *, keystore: Path | None = None) -> KeyBackend:
    """The local keystore when ``keystore`` is given (development and demos), else the named system."""
    if keystore is not None:
        from actions.backends.local import LocalKeystore

        return LocalKeystore(keystore)
    system = doc.get("keyManagementSystem")
    if system is None:
        raise RequestError(["keyManagementSystem: required (or pass --keystore DIR for the local keystore)"])
    if system == "vault":
        import hvac

        from actions.backends.vault_transit import VaultTransit

        if not os.environ.get("VAULT_ADDR") or not os.environ.get("VAULT_TOKEN"):
            raise RequestError(["keyManagementSystem: vault needs VAULT_ADDR and VAULT_TOKEN in the environment"])
        client = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])
        return VaultTransit(client, os.environ.get("KMO_VAULT_TRANSIT_MOUNT", "transit"))
    raise NotBuilt([f"keyManagementSystem: the {system} backend is not built yet (built: vault, --keystore)"])
