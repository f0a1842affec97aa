"""From kmo's canonical key uri (or a bare name) to the name an adapter takes."""

from __future__ import annotations

from urllib.parse import unquote

from ingest.schema import Provider


def key_name(uri: str) -> tuple[Provider, str]:
    """The provider and the name its adapter takes, from kmo's canonical key uri.

    Raises:
        ValueError: for a uri no adapter takes (an HSM object known only by a vendor handle, say).
    """
    if uri.startswith("pkcs11:"):
        attrs = dict(a.split("=", 1) for a in uri[len("pkcs11:") :].split(";") if "=" in a)
        return Provider.HSM, unquote(attrs.get("object", ""))
    if uri.startswith("arn:"):
        return Provider.AWS_KMS, uri
    if uri.startswith("vault:"):
        return Provider.VAULT, uri.rsplit("/", 1)[-1]
    if uri.startswith("local:"):
        return Provider.LOCAL, uri[len("local:") :]
    if uri.startswith("projects/") and "/cryptoKeys/" in uri:
        return Provider.GCP_KMS, uri.split("/cryptoKeyVersions/", 1)[0]  # the adapter takes full key names
    if uri.startswith("https://") and "/keys/" in uri:
        return Provider.AZURE_KEYVAULT, uri.split("/keys/", 1)[1].split("/", 1)[0]
    raise ValueError(f"no adapter takes keys named like {uri[:80]!r}")


def name_in_backend(key_id: str) -> str:
    """A request's ``keyId``: a canonical uri, or already the name inside the key manager."""
    try:
        return key_name(key_id)[1]
    except ValueError:
        # a Vault path without the scheme (``transit/keys/orders``); anything else is already a name
        return key_id.rsplit("/keys/", 1)[-1] if "/keys/" in key_id else key_id
