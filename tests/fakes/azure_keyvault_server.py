"""A small Azure Key Vault (keys) server for tests: HTTPS, the bearer challenge, the documented shapes.

No Azure endpoint is reachable here, so the real ``azure-keyvault-keys`` client talks to this instead.
It follows learn.microsoft.com/rest/api/keyvault/keys for what kmo calls: create, get (latest or a
version), update (PATCH attributes and tags), rotate, list keys and versions, rotation policy, delete
into the soft-deleted collection, get/recover/purge deleted keys. Rules it enforces as Key Vault
documents them: the first request carries no token and is answered 401 with a ``WWW-Authenticate``
challenge; a name held by a deleted key cannot be reused (409); deleted keys carry
``scheduledPurgeDate = deletedDate + recoverableDays``; a vault (not a Managed HSM) refuses ``oct-HSM``.
Times are whole Unix seconds, as the service sends them. ``denied`` names operations answered 403.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

TENANT = "72f988bf-0000-4000-8000-000000000000"
TOKEN = "kmo-test-token"
_SIZES = {"RSA": {2048, 3072, 4096}, "EC": {"P-256", "P-384", "P-521", "P-256K"}, "oct": {128, 192, 256}}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class FakeKeyVault:
    def __init__(self, *, managed_hsm: bool = False, recoverable_days: int | None = 90) -> None:
        self.managed_hsm, self.recoverable_days = managed_hsm, recoverable_days
        self.lock = threading.Lock()
        self.keys: dict[str, list[dict[str, Any]]] = {}  # name -> versions, oldest first
        self.deleted: dict[str, dict[str, Any]] = {}  # name -> {"versions": [...], "deletedDate", ...}
        self.policies: dict[str, dict[str, Any]] = {}
        self.denied: set[str] = set()
        self.host = ""
        self.calls: list[tuple[str, str]] = []

    # -- shapes ------------------------------------------------------------------------------
    def _kid(self, name: str, version: str) -> str:
        return f"https://{self.host}/keys/{name}/{version}"

    def _bundle(self, name: str, v: dict[str, Any]) -> dict[str, Any]:
        attrs = {"enabled": v["enabled"], "created": v["created"], "updated": v["updated"]}
        if self.recoverable_days:
            attrs |= {"recoveryLevel": "Recoverable+Purgeable", "recoverableDays": self.recoverable_days}
        else:
            attrs |= {"recoveryLevel": "Purgeable"}
        for field in ("nbf", "exp"):
            if v.get(field) is not None:
                attrs[field] = v[field]
        return {"key": {"kid": self._kid(name, v["version"]), **v["jwk"]}, "attributes": attrs, "tags": v["tags"]}

    def _item(self, name: str, v: dict[str, Any]) -> dict[str, Any]:
        bundle = self._bundle(name, v)
        return {"kid": bundle["key"]["kid"], "attributes": bundle["attributes"], "tags": bundle["tags"]}

    def _deleted_bundle(self, name: str) -> dict[str, Any]:
        entry = self.deleted[name]
        return self._bundle(name, entry["versions"][-1]) | {
            "recoveryId": f"https://{self.host}/deletedkeys/{name}",
            "deletedDate": entry["deletedDate"],
            "scheduledPurgeDate": entry["scheduledPurgeDate"],
        }

    def _new_version(self, kty: str, size: Any, tags: dict[str, str], attrs: dict[str, Any]) -> dict[str, Any]:
        base = kty.removesuffix("-HSM")
        if base == "RSA":
            modulus = bytearray(os.urandom(size // 8))
            modulus[0] |= 0x80
            jwk = {"kty": kty, "n": _b64(bytes(modulus)), "e": "AQAB", "key_ops": ["encrypt", "decrypt", "sign"]}
        elif base == "EC":
            width = {"P-256": 32, "P-256K": 32, "P-384": 48, "P-521": 66}[size]
            jwk = {"kty": kty, "crv": size, "x": _b64(os.urandom(width)), "y": _b64(os.urandom(width))}
            jwk["key_ops"] = ["sign", "verify"]
        else:
            jwk = {"kty": kty, "key_ops": ["encrypt", "decrypt", "wrapKey", "unwrapKey"]}
        now = int(time.time())
        return {
            "version": secrets.token_hex(16),
            "jwk": jwk,
            "size": size,
            "enabled": attrs.get("enabled", True),
            "nbf": attrs.get("nbf"),
            "exp": attrs.get("exp"),
            "created": now,
            "updated": now,
            "tags": dict(tags),
        }

    def _live(self, name: str) -> list[dict[str, Any]]:
        if name not in self.keys:
            raise ApiError(404, "KeyNotFound", f"A key with (name/id) {name} was not found in this key vault.")
        return self.keys[name]

    def _version(self, name: str, version: str) -> dict[str, Any]:
        versions = self._live(name)
        if not version:
            return versions[-1]
        found = next((v for v in versions if v["version"] == version), None)
        if found is None:
            raise ApiError(
                404, "KeyNotFound", f"A key with (name/id) {name}/{version} was not found in this key vault."
            )
        return found

    # -- operations --------------------------------------------------------------------------
    def create(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        if name in self.deleted:
            raise ApiError(409, "Conflict", f"Key {name} is currently in a deleted but recoverable state.")
        kty = body.get("kty", "")
        base = kty.removesuffix("-HSM")
        if base not in _SIZES or (base == "oct" and (kty != "oct-HSM" or not self.managed_hsm)):
            raise ApiError(400, "BadParameter", f"Key type {kty} is not supported here.")
        size = body.get("crv") if base == "EC" else body.get("key_size") or (2048 if base == "RSA" else 256)
        if size not in _SIZES[base]:
            raise ApiError(400, "BadParameter", f"{kty} does not support {size}.")
        version = self._new_version(kty, size, body.get("tags") or {}, body.get("attributes") or {})
        self.keys.setdefault(name, []).append(version)
        return self._bundle(name, version)

    def rotate(self, name: str) -> dict[str, Any]:
        current = self._live(name)[-1]
        tags = {k: v for k, v in current["tags"].items() if k != "kmo-suspended"}
        version = self._new_version(current["jwk"]["kty"], current["size"], tags, {})
        self.keys[name].append(version)
        return self._bundle(name, version)

    def update(self, name: str, version_id: str, body: dict[str, Any]) -> dict[str, Any]:
        version = self._version(name, version_id)
        attrs = body.get("attributes") or {}
        if "enabled" in attrs:
            version["enabled"] = bool(attrs["enabled"])
        if "tags" in body:
            version["tags"] = dict(body["tags"] or {})
        version["updated"] = int(time.time())
        return self._bundle(name, version)

    def delete(self, name: str) -> dict[str, Any]:
        versions = self._live(name)
        del self.keys[name]
        if not self.recoverable_days:  # no soft-delete: gone at once
            return self._bundle(name, versions[-1])
        now = int(time.time())
        self.deleted[name] = {
            "versions": versions,
            "deletedDate": now,
            "scheduledPurgeDate": now + self.recoverable_days * 86400,
        }
        return self._deleted_bundle(name)

    def get_deleted(self, name: str) -> dict[str, Any]:
        if name not in self.deleted:
            raise ApiError(404, "KeyNotFound", f"Deleted Key not found: {name}")
        return self._deleted_bundle(name)

    def recover(self, name: str) -> dict[str, Any]:
        self.get_deleted(name)
        self.keys[name] = self.deleted.pop(name)["versions"]
        return self._bundle(name, self.keys[name][-1])

    def purge(self, name: str) -> None:
        self.get_deleted(name)
        del self.deleted[name]

    def set_policy(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self._live(name)
        for action in body.get("lifetimeActions") or []:
            after = (action.get("trigger") or {}).get("timeAfterCreate") or ""
            m = re.match(r"^P(\d+)D$", after)
            if not m or int(m.group(1)) < 7:
                raise ApiError(400, "BadParameter", "timeAfterCreate must be at least P7D.")
        self.policies[name] = {"id": f"https://{self.host}/keys/{name}/rotationpolicy", **body}
        return self.policies[name]

    def handle(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        parts = [p for p in path.split("/") if p]
        op = f"{method} /{'/'.join(parts[:1] + ['{name}'] * (len(parts) > 1) + parts[2:3] * (len(parts) > 2))}"
        self.calls.append((method, path))
        if any(d in op for d in self.denied):
            raise ApiError(403, "Forbidden", f"The user does not have permission for {op}.")
        with self.lock:
            if parts == ["keys"] and method == "GET":
                return 200, {"value": [self._item(n, vs[-1]) for n, vs in self.keys.items()], "nextLink": None}
            if len(parts) >= 2 and parts[0] == "keys":
                name, rest = parts[1], parts[2:]
                if method == "POST" and rest == ["create"]:
                    return 200, self.create(name, body)
                if method == "POST" and rest == ["rotate"]:
                    return 200, self.rotate(name)
                if method == "GET" and rest == ["versions"]:
                    return 200, {"value": [self._item(name, v) for v in self._live(name)], "nextLink": None}
                if method == "PUT" and rest == ["rotationpolicy"]:
                    return 200, self.set_policy(name, body)
                if method == "DELETE" and not rest:
                    return 200, self.delete(name)
                if method == "GET" and len(rest) <= 1:
                    return 200, self._bundle(name, self._version(name, rest[0] if rest else ""))
                if method == "PATCH" and len(rest) <= 1:
                    return 200, self.update(name, rest[0] if rest else "", body)
            if len(parts) >= 2 and parts[0] == "deletedkeys":
                name, rest = parts[1], parts[2:]
                if method == "GET" and not rest:
                    return 200, self.get_deleted(name)
                if method == "POST" and rest == ["recover"]:
                    return 200, self.recover(name)
                if method == "DELETE" and not rest:
                    self.purge(name)
                    return 204, None
        raise ApiError(404, "NotFound", f"no route for {method} {path}")


def _handler(vault: FakeKeyVault) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, doc: dict[str, Any] | None, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(doc).encode() if doc is not None else b""
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if data:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                challenge = (
                    f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", '
                    'resource="https://vault.azure.net"'
                )
                self._reply(
                    401, {"error": {"code": "Unauthorized", "message": "AKV10000"}}, {"WWW-Authenticate": challenge}
                )
                return
            try:
                status, doc = vault.handle(self.command, urlsplit(self.path).path, json.loads(raw) if raw else {})
            except ApiError as exc:
                status, doc = exc.status, {"error": {"code": exc.code, "message": exc.message}}
            self._reply(status, doc)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    return Handler


def _certificate(directory: Path) -> tuple[Path, Path, Path]:
    """(CA file, server certificate file, server key file) for 127.0.0.1, made with cryptography."""
    from cryptography.hazmat.primitives import serialization

    from streams.broker.tls import local_server_certificate

    ca, key, cert = local_server_certificate("kmo test CA", days=1)
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


@contextmanager
def serve(*, managed_hsm: bool = False, recoverable_days: int | None = 90) -> Iterator[tuple[FakeKeyVault, str, str]]:
    """Yields (state, vault url, CA file the client must trust)."""
    vault = FakeKeyVault(managed_hsm=managed_hsm, recoverable_days=recoverable_days)
    with tempfile.TemporaryDirectory(prefix="kmo-akv-") as tmp:
        ca, cert, key = _certificate(Path(tmp))
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(vault))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        vault.host = f"127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield vault, f"https://{vault.host}", str(ca)
        finally:
            server.shutdown()
            server.server_close()


def client(url: str, ca_file: str, token: str = TOKEN) -> Any:
    """The real KeyClient against the fake: its challenge flow, a static token, the fake's CA."""
    from azure.keyvault.keys import KeyClient

    from actions.backends.azure_keyvault import StaticToken

    return KeyClient(
        vault_url=url, credential=StaticToken(token), verify_challenge_resource=False, connection_verify=ca_file
    )
