"""HSM backup, restore and multi-HSM replication, by wrap/unwrap inside the tokens.

Key material never appears in the clear outside a token:

* Each token that takes backups holds a **backup key** (AES-256, label ``kmo-backup``) that its
  Security Officer creates and marks CKA_TRUSTED (:func:`init_backup_key`). Only the SO can do
  that, and PKCS#11 lets the SO create public objects only, so the key is a public object whose
  value is still CKA_SENSITIVE: it can be used, never read.
* Keys meant to be backed up are generated CKA_EXTRACTABLE with CKA_WRAP_WITH_TRUSTED
  (``Pkcs11Hsm(backup_capable=True)``): the token lets them out only wrapped under a trusted key.
  Keys generated without it cannot be backed up at all, which the refusal says.
* A backup (:func:`backup`) is each version wrapped with CKM_AES_KEY_WRAP_PAD under the backup
  key, plus the public half of key pairs and each secret key's CKA_CHECK_VALUE; :func:`restore`
  unwraps onto a token holding the same backup key and checks the check value it gets.
* Another token receives the backup key in a transport ceremony (:func:`share_backup_key`): it
  makes a one-time RSA transport pair, the source's SO marks that public key trusted, the backup
  key is wrapped for it with RSA-OAEP, unwrapped on the target (usable to restore, not to take
  backups), and the transport objects are destroyed. After that, :func:`replicate` keeps one key
  on several tokens and :func:`consistency` checks that they agree (versions, check values,
  public keys).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pkcs11
from pkcs11 import DEFAULT, Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11

from actions.backends.base import BackendError, InvalidKeyState, KeyInfo, KeyNotFound, PermissionDenied, Unsupported
from actions.backends.pkcs11_hsm import Pkcs11Hsm, library

BACKUP_LABEL = "kmo-backup"
TRANSPORT_LABEL = "kmo-transport"
FORMAT = "kmo-hsm-backup/1"
_RESTORED = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: True,
    Attribute.WRAP_WITH_TRUSTED: True,
}
_PROBE = {
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: True,
    Attribute.WRAP_WITH_TRUSTED: True,
    Attribute.TOKEN: False,
}
_NOT_ON_PRIVATE = {Attribute.ENCRYPT: DEFAULT, Attribute.VERIFY: DEFAULT, Attribute.WRAP: DEFAULT}
# OAEP for the transport: SHA-256 where the module takes it; SoftHSM2 2.6 takes SHA-1 only
_OAEP = ((Mechanism.SHA256, pkcs11.MGF.SHA256, None), (Mechanism.SHA_1, pkcs11.MGF.SHA1, None))


def _b64(data: Any) -> str:
    return base64.b64encode(bytes(data)).decode()


def kcv(key: Any) -> str | None:
    """A secret key's check value: the first three bytes of AES-ECB of a zero block, computed inside
    the token, else CKA_CHECK_VALUE (the same definition). The computed one comes first because
    SoftHSM2 does not keep CKA_CHECK_VALUE right on unwrapped keys. None when neither is available."""
    try:
        return bytes(key.encrypt(bytes(16), mechanism=Mechanism.AES_ECB)[:3]).hex()
    except p11.PKCS11Error:
        pass
    try:
        stored = bytes(key[Attribute.CHECK_VALUE])
    except p11.PKCS11Error:
        return None
    return stored.hex() or None


def _so_session(hsm: Pkcs11Hsm, so_pin: str, operation: str) -> Any:
    try:
        return library(hsm.module).get_token(token_label=hsm.token_label).open(so_pin=so_pin, rw=True)
    except (p11.PinIncorrect, p11.PinLocked, p11.PinInvalid, p11.PinLenRange) as exc:
        raise PermissionDenied("hsm", operation, None, f"SO login refused: {type(exc).__name__}") from exc
    except p11.PKCS11Error as exc:
        raise BackendError("hsm", operation, None, type(exc).__name__) from exc


def _backup_key(session: Any, operation: str) -> Any:
    try:
        return session.get_key(label=BACKUP_LABEL, object_class=ObjectClass.SECRET_KEY)
    except p11.NoSuchKey:
        raise InvalidKeyState(
            "hsm", operation, None, "this token has no backup key: its SO runs `kmo hsm backup-key-init` first"
        ) from None


def init_backup_key(hsm: Pkcs11Hsm, so_pin: str) -> dict[str, Any]:
    """The SO creates the token's trusted backup key (idempotent); returns its check value."""
    with _so_session(hsm, so_pin, "backup-key-init") as session:
        try:
            key = session.get_key(label=BACKUP_LABEL, object_class=ObjectClass.SECRET_KEY)
            created = False
        except p11.NoSuchKey:
            key = session.generate_key(
                KeyType.AES,
                256,
                label=BACKUP_LABEL,
                id=BACKUP_LABEL.encode(),
                store=True,
                template={
                    Attribute.TRUSTED: True,
                    Attribute.WRAP: True,
                    Attribute.UNWRAP: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: True,  # to reach other tokens, and only under a trusted key:
                    Attribute.WRAP_WITH_TRUSTED: True,
                    Attribute.PRIVATE: False,  # the SO can create public objects only
                    Attribute.TOKEN: True,
                },
            )
            created = True
        return {"token": hsm.token_label, "created": created, "checkValue": kcv(key)}


def _public_part(objects: list[Any]) -> dict[str, str] | None:
    public = next((o for o in objects if ObjectClass(o[Attribute.CLASS]) is ObjectClass.PUBLIC_KEY), None)
    if public is None:
        return None
    if KeyType(public[Attribute.KEY_TYPE]) is KeyType.RSA:
        return {"modulus": _b64(public[Attribute.MODULUS]), "exponent": _b64(public[Attribute.PUBLIC_EXPONENT])}
    return {"ecParams": _b64(public[Attribute.EC_PARAMS]), "ecPoint": _b64(public[Attribute.EC_POINT])}


def backup(hsm: Pkcs11Hsm, name: str) -> dict[str, Any]:
    """Every version of ``name`` wrapped under the token's backup key (a JSON-ready document)."""
    with hsm.session("backup", name) as session:
        wrapper = _backup_key(session, "backup")
        versions = hsm.key_objects(session, name).get(name)
        if not versions:
            raise KeyNotFound("hsm", "backup", name, "no such key on the token")
        if not wrapper[Attribute.WRAP]:
            raise Unsupported(
                "hsm", "backup", name, "this token's backup key restores only (it was shared from another token)"
            )
        entries = []
        for version, objects in sorted(versions.items()):
            key = next(o for o in objects if ObjectClass(o[Attribute.CLASS]) is not ObjectClass.PUBLIC_KEY)
            try:
                wrapped = wrapper.wrap_key(key, mechanism=Mechanism.AES_KEY_WRAP_PAD)
            except (p11.KeyNotWrappable, p11.KeyUnextractable, p11.MechanismInvalid) as exc:
                raise Unsupported(
                    "hsm",
                    "backup",
                    name,
                    f"v{version} cannot be wrapped ({type(exc).__name__}): it was generated non-extractable, "
                    "or this module cannot wrap its key type",
                ) from None
            secret = ObjectClass(key[Attribute.CLASS]) is ObjectClass.SECRET_KEY
            entry: dict[str, Any] = {
                "version": version,
                "class": "secret" if secret else "private",
                "keyType": KeyType(key[Attribute.KEY_TYPE]).name,
                "wrapped": _b64(wrapped),
            }
            if secret:
                entry["checkValue"] = kcv(key)
            else:
                entry["public"] = _public_part(objects)
            entries.append(entry)
        return {
            "format": FORMAT,
            "key": name,
            "token": hsm.token_label,
            "takenAt": datetime.now(UTC).isoformat(),
            "wrapping": "CKM_AES_KEY_WRAP_PAD under the token's trusted backup key",
            "backupKeyCheckValue": kcv(wrapper),
            "versions": entries,
        }


def restore(hsm: Pkcs11Hsm, doc: dict[str, Any]) -> KeyInfo:
    """Unwrap the versions of a backup that ``hsm``'s token lacks; each secret key's check value
    must match the backup's, or the restored object is destroyed and the restore refused."""
    if doc.get("format") != FORMAT:
        raise BackendError("hsm", "restore", None, f"not a {FORMAT} document")
    name = doc["key"]
    with hsm.session("restore", name) as session:
        # no up-front comparison of backup keys: a shared copy cannot report its check value reliably;
        # AES-KWP's integrity check refuses a different backup key, and each restored version is checked
        wrapper = _backup_key(session, "restore")
        present = hsm.key_objects(session, name).get(name, {})
        for entry in doc["versions"]:
            if entry["version"] in present:
                continue
            _restore_version(session, wrapper, name, entry)
    return hsm.describe(name)


def _restore_version(session: Any, wrapper: Any, name: str, entry: dict[str, Any]) -> None:
    ident, key_type = f"{name}/v{entry['version']}".encode(), KeyType[entry["keyType"]]
    common = {"label": name, "id": ident, "store": True, "mechanism": Mechanism.AES_KEY_WRAP_PAD}
    data = base64.b64decode(entry["wrapped"])
    try:
        if entry["class"] == "secret":
            caps = MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT
            key = wrapper.unwrap_key(
                ObjectClass.SECRET_KEY, key_type, data, capabilities=caps, template=_RESTORED, **common
            )
            if kcv(key) != entry["checkValue"]:
                key.destroy()
                raise InvalidKeyState(
                    "hsm", "restore", name, f"v{entry['version']} check value differs from the backup"
                )
            return
        caps = MechanismFlag.SIGN | (MechanismFlag.DECRYPT if key_type is KeyType.RSA else MechanismFlag(0))
        wrapper.unwrap_key(
            ObjectClass.PRIVATE_KEY,
            key_type,
            data,
            capabilities=caps,
            template={**_RESTORED, **_NOT_ON_PRIVATE},
            **common,
        )
        public = entry["public"]
        template = {
            Attribute.CLASS: ObjectClass.PUBLIC_KEY,
            Attribute.KEY_TYPE: key_type,
            Attribute.TOKEN: True,
            Attribute.LABEL: name,
            Attribute.ID: ident,
            Attribute.VERIFY: True,
        }
        if "modulus" in public:
            template |= {
                Attribute.MODULUS: base64.b64decode(public["modulus"]),
                Attribute.PUBLIC_EXPONENT: base64.b64decode(public["exponent"]),
                Attribute.ENCRYPT: True,
            }
        else:
            template |= {
                Attribute.EC_PARAMS: base64.b64decode(public["ecParams"]),
                Attribute.EC_POINT: base64.b64decode(public["ecPoint"]),
            }
        session.create_object(template)
    except (p11.WrappedKeyInvalid, p11.EncryptedDataInvalid, p11.GeneralError) as exc:
        # AES-KWP's integrity check failed (SoftHSM2 reports that as a general error)
        raise InvalidKeyState(
            "hsm",
            "restore",
            name,
            f"v{entry['version']} does not unwrap ({type(exc).__name__}): made under a different backup key, "
            "or altered",
        ) from exc
    except p11.PKCS11Error as exc:
        raise BackendError("hsm", "restore", name, f"v{entry['version']}: {type(exc).__name__}") from exc


def share_backup_key(source: Pkcs11Hsm, source_so_pin: str, target: Pkcs11Hsm) -> dict[str, Any]:
    """The transport ceremony: ``target`` receives ``source``'s backup key, wrapped, never in clear."""
    with target.session("backup-key-share", None) as tsession:
        try:
            tsession.get_key(label=BACKUP_LABEL, object_class=ObjectClass.SECRET_KEY)
            raise InvalidKeyState("hsm", "backup-key-share", None, f"{target.token_label} already has a backup key")
        except p11.NoSuchKey:
            pass
        public, _private = tsession.generate_keypair(
            KeyType.RSA,
            3072,
            label=TRANSPORT_LABEL,
            id=TRANSPORT_LABEL.encode(),
            store=True,
            public_template={Attribute.WRAP: True},
            private_template={
                **{k: v for k, v in _RESTORED.items() if k is not Attribute.WRAP_WITH_TRUSTED},
                Attribute.EXTRACTABLE: False,
                Attribute.UNWRAP: True,
            },
        )
        modulus, exponent = bytes(public[Attribute.MODULUS]), bytes(public[Attribute.PUBLIC_EXPONENT])
    trusted_label = f"{TRANSPORT_LABEL}:{target.token_label}"
    try:
        with _so_session(source, source_so_pin, "backup-key-share") as so:
            so.create_object(
                {
                    Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                    Attribute.KEY_TYPE: KeyType.RSA,
                    Attribute.TOKEN: True,
                    Attribute.LABEL: trusted_label,
                    Attribute.MODULUS: modulus,
                    Attribute.PUBLIC_EXPONENT: exponent,
                    Attribute.WRAP: True,
                    Attribute.TRUSTED: True,
                }
            )
        with source.session("backup-key-share", None) as ssession:
            backup_key = _backup_key(ssession, "backup-key-share")
            check = kcv(backup_key)
            transport = ssession.get_key(label=trusted_label, object_class=ObjectClass.PUBLIC_KEY)
            wrapped, oaep = None, None
            for param in _OAEP:
                try:
                    wrapped = transport.wrap_key(backup_key, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=param)
                    oaep = param
                    break
                except (p11.ArgumentsBad, p11.MechanismParamInvalid):
                    continue
            if wrapped is None or oaep is None:
                raise Unsupported(
                    "hsm", "backup-key-share", None, "the module wraps with RSA-OAEP in neither SHA-256 nor SHA-1"
                )
            # a probe: a throwaway key wrapped under the backup key; the target must open it to the same check value
            probe = ssession.generate_key(KeyType.AES, 256, store=False, template=dict(_PROBE))
            probe_check, probe_wrapped = kcv(probe), backup_key.wrap_key(probe, mechanism=Mechanism.AES_KEY_WRAP_PAD)
        with target.session("backup-key-share", None) as tsession:
            private = tsession.get_key(label=TRANSPORT_LABEL, object_class=ObjectClass.PRIVATE_KEY)
            received = private.unwrap_key(
                ObjectClass.SECRET_KEY,
                KeyType.AES,
                wrapped,
                label=BACKUP_LABEL,
                id=BACKUP_LABEL.encode(),
                store=True,
                mechanism=Mechanism.RSA_PKCS_OAEP,
                mechanism_param=oaep,
                capabilities=MechanismFlag.UNWRAP,  # restores here; backups are taken where the SO trusts the key
                template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                },
            )
            opened = received.unwrap_key(
                ObjectClass.SECRET_KEY,
                KeyType.AES,
                probe_wrapped,
                store=False,
                mechanism=Mechanism.AES_KEY_WRAP_PAD,
                capabilities=MechanismFlag.ENCRYPT,
            )
            if kcv(opened) != probe_check:
                received.destroy()
                raise InvalidKeyState(
                    "hsm", "backup-key-share", None, "the received backup key does not open the probe"
                )
    finally:  # the transport objects are single-use: gone whatever happened
        with target.session("backup-key-share", None) as tsession:
            for obj in tsession.get_objects({Attribute.LABEL: TRANSPORT_LABEL}):
                obj.destroy()
        try:
            with _so_session(source, source_so_pin, "backup-key-share") as so:
                for obj in so.get_objects({Attribute.LABEL: trusted_label}):
                    obj.destroy()
        except BackendError:
            pass
    hash_name = "SHA-256" if oaep is _OAEP[0] else "SHA-1"
    return {"from": source.token_label, "to": target.token_label, "checkValue": check, "oaepHash": hash_name}


def replicate(source: Pkcs11Hsm, name: str, target: Pkcs11Hsm) -> KeyInfo:
    """Keep ``name`` on ``target`` too: a backup taken on ``source`` restored there, in memory only."""
    return restore(target, backup(source, name))


def _fingerprint(hsm: Pkcs11Hsm, name: str) -> dict[int, str]:
    """version -> check value (secret keys) or public key (key pairs): what must agree across tokens."""
    with hsm.session("consistency", name) as session:
        versions = hsm.key_objects(session, name).get(name)
        if not versions:
            return {}
        out = {}
        for version, objects in versions.items():
            secret = next((o for o in objects if ObjectClass(o[Attribute.CLASS]) is ObjectClass.SECRET_KEY), None)
            if secret is not None:
                out[version] = f"kcv:{kcv(secret)}"
            else:
                out[version] = "pub:" + str(_public_part(objects))
        return out


def consistency(hsms: list[Pkcs11Hsm], name: str) -> dict[str, Any]:
    """Does every token hold the same versions of ``name`` with the same material (by check value
    or public key)? Lists what differs, token by token."""
    prints = {h.token_label: _fingerprint(h, name) for h in hsms}
    versions = sorted({v for p in prints.values() for v in p})
    problems = []
    for version in versions:
        seen = {token: p.get(version) for token, p in prints.items()}
        if None in seen.values():
            problems.append(f"v{version} missing on {', '.join(t for t, v in seen.items() if v is None)}")
        elif len(set(seen.values())) > 1:
            problems.append(f"v{version} differs between tokens")
    return {"key": name, "tokens": list(prints), "versions": versions, "consistent": not problems, "problems": problems}
