"""Key derivation through approved KDFs, for keys that must be reproducible from a parent.

* ``hkdf``: HKDF-SHA256 (RFC 5869; SP 800-56C Rev. 2 two-step derivation), ``info = label 0x00 context``.
* ``sp800-108``: the SP 800-108 Rev. 1 KDF in counter mode with HMAC-SHA256 as the PRF
  (32-bit counter before the fixed input, 32-bit length), as pyca/cryptography's KBKDFHMAC implements it.

The same parent version, KDF, label and context always give the same key, so a tenant's key can be
derived again rather than stored twice; a different context gives an unrelated key. Derivation runs
where the parent's material already is (the local keystore); derived material is never returned.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.kbkdf import KBKDFHMAC, CounterLocation, Mode

KDFS = ("hkdf", "sp800-108")


def derive_material(kdf: str, parent: bytes, *, label: bytes, context: bytes, length: int = 32) -> bytes:
    """``length`` bytes derived from ``parent`` (a key-derivation key) for ``label`` and ``context``."""
    if kdf == "hkdf":
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=label + b"\x00" + context).derive(parent)
    if kdf == "sp800-108":
        return KBKDFHMAC(
            algorithm=hashes.SHA256(),
            mode=Mode.CounterMode,
            length=length,
            rlen=4,
            llen=4,
            location=CounterLocation.BeforeFixed,
            label=label,
            context=context,
            fixed=None,
        ).derive(parent)
    raise ValueError(f"kdf must be one of {', '.join(KDFS)}, not {kdf!r}")
