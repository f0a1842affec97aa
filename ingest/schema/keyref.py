"""Canonical key references: one string form per provider, so events, inventory and actions agree.

A key is named the way its own key manager names it, normalised so that two spellings of one key
compare equal:

============== ===================================================================
provider       canonical ``uri``
============== ===================================================================
aws-kms        key ARN ``arn:aws:kms:<region>:<account>:key/<key-id>`` (alias ARN
               only when the key behind an alias is unknown)
gcp-kms        ``projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>``
azure-keyvault ``https://<vault>.vault.azure.net/keys/<name>``
vault          ``vault:<mount>/keys/<name>`` (transit or another engine's mount)
hsm            RFC 7512 ``pkcs11:token=<token>;object=<label>`` (or ``;id=<%hex>``)
local          ``local:<name>`` (kmo's software keystore)
============== ===================================================================

Versions are never part of the uri: a key keeps one identity across rotations and the version
travels beside it (``KeyEvent.key_version``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote, urlsplit


class Provider(StrEnum):
    """Key management systems, spelled as the product specification's ``keyManagementSystem``."""

    AWS_KMS = "aws-kms"
    GCP_KMS = "gcp-kms"
    AZURE_KEYVAULT = "azure-keyvault"
    VAULT = "vault"
    HSM = "hsm"
    LOCAL = "local"  # kmo's own software keystore (development, systems without a KMS)


class KeyRefError(ValueError):
    """A string that cannot be a key reference of the provider it claims."""


_AWS_ARN = re.compile(r"^arn:(aws[a-z-]*):kms:([a-z0-9-]+):(\d{12}):(key|alias)/(.+)$")
_AWS_KEY_ID = re.compile(r"^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
_GCP = re.compile(
    r"^(?:(?://)?cloudkms\.googleapis\.com/)?"
    r"(projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+)"
    r"(?:/cryptoKeyVersions/([^/]+))?$"
)
_AZURE_PATH = re.compile(r"^/keys/([0-9A-Za-z-]+)(?:/([0-9A-Za-z]+))?/?$")
_VAULT = re.compile(r"^(?:vault:)?([A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*)/keys/([^/]+)$")


@dataclass(frozen=True, slots=True)
class KeyRef:
    """A provider plus the canonical uri of one key. Construct through the classmethods."""

    provider: Provider
    uri: str

    def __str__(self) -> str:
        return self.uri

    @classmethod
    def aws(cls, key: str, *, region: str | None = None, account: str | None = None) -> KeyRef:
        """From a key ARN, an alias ARN, or a bare key id (then ``region`` and ``account`` are needed)."""
        if _AWS_ARN.match(key):
            return cls(Provider.AWS_KMS, key)
        if _AWS_KEY_ID.match(key) and region and account:
            return cls(Provider.AWS_KMS, f"arn:aws:kms:{region}:{account}:key/{key}")
        if key.startswith("alias/") and region and account:
            return cls(Provider.AWS_KMS, f"arn:aws:kms:{region}:{account}:{key}")
        raise KeyRefError(f"not an AWS KMS key ARN or resolvable key id: {key[:120]!r}")

    @property
    def is_alias(self) -> bool:
        """True for an AWS alias ARN: the key behind it was not known where the reference was made."""
        return self.provider is Provider.AWS_KMS and ":alias/" in self.uri

    @classmethod
    def gcp(cls, name: str) -> tuple[KeyRef, str | None]:
        """From a cryptoKey or cryptoKeyVersion resource name; returns the key and the version."""
        m = _GCP.match(name)
        if not m:
            raise KeyRefError(f"not a GCP cryptoKey resource name: {name[:120]!r}")
        return cls(Provider.GCP_KMS, m.group(1)), m.group(2)

    @classmethod
    def azure(cls, kid: str) -> tuple[KeyRef, str | None]:
        """From a Key Vault key id URL (``https://<vault>.vault.azure.net/keys/<name>[/<version>]``)."""
        parts = urlsplit(kid)
        m = _AZURE_PATH.match(parts.path)
        if parts.scheme != "https" or not parts.hostname or not m:
            raise KeyRefError(f"not an Azure Key Vault key id: {kid[:120]!r}")
        host = parts.hostname.lower()
        return cls(Provider.AZURE_KEYVAULT, f"https://{host}/keys/{m.group(1).lower()}"), m.group(2)

    @classmethod
    def vault(cls, mount: str, name: str) -> KeyRef:
        """From a secrets-engine mount (``transit``) and a key name."""
        mount = mount.strip("/")
        if not mount or not name or "/" in name:
            raise KeyRefError(f"not a Vault mount and key name: {mount!r}, {name!r}")
        return cls(Provider.VAULT, f"vault:{mount}/keys/{name}")

    @classmethod
    def pkcs11(cls, token: str, *, label: str | None = None, object_id: bytes | None = None) -> KeyRef:
        """An RFC 7512 uri naming a token object by label or by CKA_ID."""
        if not token or (label is None and object_id is None):
            raise KeyRefError("a PKCS#11 key reference needs a token and a label or an id")
        attrs = [f"token={quote(token, safe='')}"]
        if label is not None:
            attrs.append(f"object={quote(label, safe='')}")
        if object_id is not None:
            attrs.append("id=" + "".join(f"%{b:02x}" for b in object_id))
        return cls(Provider.HSM, "pkcs11:" + ";".join(attrs))

    @classmethod
    def hsm_handle(cls, token: str, handle: int) -> KeyRef:
        """An HSM object known only by its handle (CloudHSM audit logs): RFC 7512 allows vendor
        attributes, so ``pkcs11:token=<hsm>;x-handle=<n>``. Inventory maps handles to labels."""
        if handle < 0:
            raise KeyRefError("an HSM handle must be non-negative")
        return cls.hsm_object(token, "x-handle", str(handle))

    @classmethod
    def hsm_object(cls, token: str, attribute: str, value: str) -> KeyRef:
        """An HSM object named by a vendor attribute (``x-handle``, Luna's ``x-ouid``)."""
        if not token or not value or not attribute.startswith("x-"):
            raise KeyRefError("an HSM vendor reference needs a token, an x- attribute and a value")
        return cls(Provider.HSM, f"pkcs11:token={quote(token, safe='')};{attribute}={quote(value, safe='')}")

    @classmethod
    def from_native(cls, provider: Provider | str, native_id: str, **hints: str) -> KeyRef:
        """Canonicalise the identifier an inventory or a request uses for a key.

        Args:
            provider: the key manager holding the key.
            native_id: AWS key ARN (or key id with ``region``/``account`` hints), GCP cryptoKey name,
                Azure key id, Vault ``<mount>/keys/<name>``, or a ``pkcs11:`` uri / HSM label (with a
                ``token`` hint).

        Raises:
            KeyRefError: when ``native_id`` cannot name a key of ``provider``.
        """
        p = Provider(provider)
        if p is Provider.AWS_KMS:
            return cls.aws(native_id, region=hints.get("region"), account=hints.get("account"))
        if p is Provider.GCP_KMS:
            return cls.gcp(native_id)[0]
        if p is Provider.AZURE_KEYVAULT:
            return cls.azure(native_id)[0]
        if p is Provider.VAULT:
            m = _VAULT.match(native_id)
            if not m:
                raise KeyRefError(f"not a Vault key path <mount>/keys/<name>: {native_id[:120]!r}")
            return cls.vault(m.group(1), m.group(2))
        if native_id.startswith("pkcs11:"):
            return cls(Provider.HSM, native_id)
        token = hints.get("token")
        if not token:
            raise KeyRefError("an HSM label needs a token hint (or pass a pkcs11: uri)")
        return cls.pkcs11(token, label=native_id)
