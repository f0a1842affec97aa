"""Which backend a request runs against, from its ``keyManagementSystem`` and the environment.

Credentials come from each client library's own environment (``VAULT_ADDR``/``VAULT_TOKEN`` for
hvac, boto3's credential chain for AWS, ``KMO_HSM_PIN`` for PKCS#11), so kmo never stores or prints them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from actions.backends.base import KeyBackend
from actions.execute import NotBuilt
from actions.request import RequestError


def backend_for(
    doc: dict[str, Any], *, keystore: Path | None = None, allow_immediate_destroy: bool = False
) -> KeyBackend:
    """The local keystore when ``keystore`` is given (development and demos), else the named system.

    ``allow_immediate_destroy`` is passed only by the destruction pipeline's last step, after its
    approvals and soak: it lets providers that delete at once (Vault transit) do so.
    """
    if keystore is not None:
        from actions.backends.local import LocalKeystore

        return LocalKeystore(keystore)
    system = doc.get("keyManagementSystem")
    if system == "local":
        raise RequestError(["keyManagementSystem: the local keystore needs --keystore DIR"])
    if system is None:
        raise RequestError(["keyManagementSystem: required (or pass --keystore DIR for the local keystore)"])
    if system == "vault":
        import hvac

        from actions.backends.vault_transit import VaultTransit

        if not os.environ.get("VAULT_ADDR") or not os.environ.get("VAULT_TOKEN"):
            raise RequestError(["keyManagementSystem: vault needs VAULT_ADDR and VAULT_TOKEN in the environment"])
        client = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])
        return VaultTransit(
            client,
            os.environ.get("KMO_VAULT_TRANSIT_MOUNT", "transit"),
            allow_immediate_destroy=allow_immediate_destroy,
        )
    if system == "aws-kms":
        from botocore.exceptions import BotoCoreError

        from actions.backends.aws_kms import AwsKms

        try:  # boto3's own chain: AWS_PROFILE, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL_KMS, instance roles
            return AwsKms()
        except BotoCoreError as exc:
            raise RequestError([f"keyManagementSystem: aws-kms is not configured: {exc}"]) from exc
    if system == "hsm":
        from actions.backends.pkcs11_hsm import Pkcs11Hsm

        missing = [v for v in ("KMO_HSM_MODULE", "KMO_HSM_TOKEN", "KMO_HSM_PIN") if not os.environ.get(v)]
        if missing:
            raise RequestError([f"keyManagementSystem: hsm needs {', '.join(missing)} in the environment"])
        return Pkcs11Hsm(
            os.environ["KMO_HSM_MODULE"],
            os.environ["KMO_HSM_TOKEN"],
            os.environ["KMO_HSM_PIN"],
            allow_immediate_destroy=allow_immediate_destroy,
        )
    raise NotBuilt(
        [f"keyManagementSystem: the {system} backend is not built yet (built: vault, aws-kms, hsm, --keystore)"]
    )


def configured_backend(system: str, keystore: str | Path | None = None) -> KeyBackend | None:
    """The backend for ``system`` as this environment configures it, or None where it is not configured
    (the scheduler and the responder record a skip for those keys instead of failing)."""
    try:
        local = Path(keystore) if keystore and system == "local" else None
        return backend_for({"keyManagementSystem": system}, keystore=local)
    except RequestError:
        return None
