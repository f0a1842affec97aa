"""Which backend a request runs against, from its ``keyManagementSystem`` and the environment.

Credentials come from each client library's own environment (``VAULT_ADDR``/``VAULT_TOKEN`` for
hvac, boto3's credential chain for AWS, Application Default Credentials for Cloud KMS,
azure-identity for Key Vault, ``KMO_HSM_PIN`` for PKCS#11), so kmo never stores or prints them.
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
            backup_capable=os.environ.get("KMO_HSM_BACKUP_CAPABLE") == "1",  # see actions/hsm_backup.py
        )
    if system == "gcp-kms":
        return _gcp_kms()
    if system == "azure-keyvault":
        return _azure_keyvault()
    raise NotBuilt([f"keyManagementSystem: no {system} backend (built: vault, aws-kms, gcp-kms, azure-keyvault, hsm)"])


def _gcp_kms() -> KeyBackend:
    """``KMO_GCP_KEY_RING`` names the ring; credentials are google-auth's Application Default
    Credentials. ``KMO_GCP_KMS_ENDPOINT`` points elsewhere (a private endpoint, or an emulator):
    credentials are never sent over plain HTTP, so an ``http://`` endpoint is called anonymously."""
    from actions.backends.gcp_kms import GcpKms

    ring = os.environ.get("KMO_GCP_KEY_RING", "")
    if not ring.startswith("projects/") or "/keyRings/" not in ring:
        raise RequestError(
            ["keyManagementSystem: gcp-kms needs KMO_GCP_KEY_RING=projects/P/locations/L/keyRings/R in the environment"]
        )
    from google.cloud import kms

    endpoint = os.environ.get("KMO_GCP_KMS_ENDPOINT")
    if endpoint and endpoint.startswith("http://"):
        from google.auth.credentials import AnonymousCredentials

        client = kms.KeyManagementServiceClient(
            credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": endpoint}
        )
    else:
        try:
            client = kms.KeyManagementServiceClient(client_options={"api_endpoint": endpoint} if endpoint else None)
        except Exception as exc:  # google.auth.exceptions.DefaultCredentialsError and kin
            raise RequestError(
                [f"keyManagementSystem: gcp-kms has no usable credentials: {type(exc).__name__}"]
            ) from exc
    return GcpKms(client, ring)


def _azure_keyvault() -> KeyBackend:
    """``KMO_AZURE_VAULT_URL`` names the vault or Managed HSM; credentials are azure-identity's
    DefaultAzureCredential, or ``KMO_AZURE_ACCESS_TOKEN`` (a token from ``az account
    get-access-token``). ``KMO_AZURE_CA_BUNDLE`` adds a CA to trust; ``KMO_AZURE_VERIFY_CHALLENGE_RESOURCE=0``
    lets a non-Azure host (an emulator) answer the bearer challenge - never set it for a real vault."""
    from azure.keyvault.keys import KeyClient

    from actions.backends.azure_keyvault import AzureKeyVault, StaticToken

    url = os.environ.get("KMO_AZURE_VAULT_URL", "")
    if not url.startswith("https://"):
        raise RequestError(
            ["keyManagementSystem: azure-keyvault needs KMO_AZURE_VAULT_URL=https://... in the environment"]
        )
    if os.environ.get("KMO_AZURE_ACCESS_TOKEN"):
        credential: Any = StaticToken(os.environ["KMO_AZURE_ACCESS_TOKEN"])
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    options: dict[str, Any] = {
        "verify_challenge_resource": os.environ.get("KMO_AZURE_VERIFY_CHALLENGE_RESOURCE", "1") != "0"
    }
    if os.environ.get("KMO_AZURE_CA_BUNDLE"):
        options["connection_verify"] = os.environ["KMO_AZURE_CA_BUNDLE"]
    managed = os.environ.get("KMO_AZURE_MANAGED_HSM")
    return AzureKeyVault(
        KeyClient(vault_url=url, credential=credential, **options),
        managed_hsm=None if managed is None else managed == "1",
    )


def configured_backend(system: str, keystore: str | Path | None = None) -> KeyBackend | None:
    """The backend for ``system`` as this environment configures it, or None where it is not configured
    (the scheduler and the responder record a skip for those keys instead of failing)."""
    try:
        local = Path(keystore) if keystore and system == "local" else None
        return backend_for({"keyManagementSystem": system}, keystore=local)
    except RequestError:
        return None
