"""A small Cloud KMS REST server for tests: the documented v1 resources and state rules, nothing more.

No GCP endpoint is reachable here, so the real ``google-cloud-kms`` client (REST transport) talks to
this instead. It implements what kmo's adapter calls, following cloud.google.com/kms/docs/reference/rest:

* ``projects.locations.keyRings.cryptoKeys``: create (``cryptoKeyId``, ``skipInitialVersionCreation``),
  get, list, patch (``updateMask``), ``:updatePrimaryVersion``, ``:encrypt``, ``:decrypt``;
* ``.../cryptoKeyVersions``: create, get, list, patch (state only), ``:destroy``, ``:restore``, ``:import``;
* ``.../importJobs``: create (RSA_OAEP_{3072,4096}_SHA256_AES_256) and get.

State rules it enforces, as Cloud KMS documents them: only ENABLED versions can become primary or
encrypt; only ENABLED/DISABLED versions can be destroyed (-> DESTROY_SCHEDULED with
``destroyTime = now + destroyScheduledDuration``); only DESTROY_SCHEDULED versions can be restored
(-> DISABLED); a scheduled or destroyed version's state cannot be patched. Errors use the documented
JSON error body. ``advance(seconds)`` moves the server's clock, so scheduled versions reach DESTROYED.
The client sends enums as integers (``$alt=json;enum-encoding=int``); both forms are accepted.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.cloud import kms

_ALGO = kms.CryptoKeyVersion.CryptoKeyVersionAlgorithm
_PURPOSE = kms.CryptoKey.CryptoKeyPurpose
_STATE = kms.CryptoKeyVersion.CryptoKeyVersionState
_PROTECTION = kms.ProtectionLevel
_KEY = re.compile(r"^(projects/[^/]+/locations/[^/]+/keyRings/[^/]+)/cryptoKeys/([^/:]+)$")
_VERSION = re.compile(r"^(projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+)/cryptoKeyVersions/(\d+)$")
_RING = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+$")


class ApiError(Exception):
    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


def _enum(kind: Any, value: Any) -> str:
    return kind(value).name if isinstance(value, int) else kind[value].name


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _seconds(text: str) -> float:
    return float(text.rstrip("s"))


class FakeCloudKms:
    """The resources, under one lock; the HTTP handler only routes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, list[dict[str, Any]]] = {}
        self.material: dict[str, bytes] = {}  # version name -> AES key (symmetric keys only)
        self.offset = timedelta()
        self.calls: list[tuple[str, str]] = []
        self.import_jobs: dict[str, dict[str, Any]] = {}
        self.import_private: dict[str, Any] = {}  # job name -> RSA private key (stays in the fake)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.offset += timedelta(seconds=seconds)

    # -- resources ---------------------------------------------------------------------------
    def _key(self, name: str) -> dict[str, Any]:
        if name not in self.keys:
            raise ApiError(404, "NOT_FOUND", f"CryptoKey {name} not found.")
        return self.keys[name]

    def _version(self, name: str) -> dict[str, Any]:
        m = _VERSION.match(name)
        version = next((v for v in self.versions.get(m.group(1), []) if v["name"] == name), None) if m else None
        if version is None:
            raise ApiError(404, "NOT_FOUND", f"CryptoKeyVersion {name} not found.")
        self._settle(version)
        return version

    def _settle(self, version: dict[str, Any]) -> None:
        """A scheduled version whose destroy time has passed is destroyed, its material gone."""
        if version["state"] == "DESTROY_SCHEDULED" and _parse(version["destroyTime"]) <= self.now():
            version["state"] = "DESTROYED"
            version["destroyEventTime"] = version["destroyTime"]
            self.material.pop(version["name"], None)

    def _key_view(self, key: dict[str, Any]) -> dict[str, Any]:
        out = dict(key)
        if key.get("primaryId"):
            out["primary"] = self._version(f"{key['name']}/cryptoKeyVersions/{key['primaryId']}")
        out.pop("primaryId", None)
        return out

    def _new_version(self, key: dict[str, Any]) -> dict[str, Any]:
        versions = self.versions.setdefault(key["name"], [])
        now = _stamp(self.now())
        version = {
            "name": f"{key['name']}/cryptoKeyVersions/{len(versions) + 1}",
            "state": "ENABLED",
            "protectionLevel": key["versionTemplate"]["protectionLevel"],
            "algorithm": key["versionTemplate"]["algorithm"],
            "createTime": now,
            "generateTime": now,
        }
        versions.append(version)
        if key["purpose"] == "ENCRYPT_DECRYPT":
            self.material[version["name"]] = AESGCM.generate_key(bit_length=256)
        return version

    def create_key(self, parent: str, key_id: str, body: dict[str, Any], skip_version: bool) -> dict[str, Any]:
        if not _RING.match(parent):
            raise ApiError(404, "NOT_FOUND", f"KeyRing {parent} not found.")
        if not re.match(r"^[a-zA-Z0-9_-]{1,63}$", key_id or ""):
            raise ApiError(400, "INVALID_ARGUMENT", "cryptoKeyId must match [a-zA-Z0-9_-]{1,63}")
        name = f"{parent}/cryptoKeys/{key_id}"
        if name in self.keys:
            raise ApiError(409, "ALREADY_EXISTS", f"CryptoKey {name} already exists.")
        purpose = _enum(_PURPOSE, body.get("purpose", 0))
        template = body.get("versionTemplate") or {}
        algorithm = _enum(_ALGO, template.get("algorithm", 0))
        if purpose == "ENCRYPT_DECRYPT" and algorithm != "GOOGLE_SYMMETRIC_ENCRYPTION":
            raise ApiError(400, "INVALID_ARGUMENT", "ENCRYPT_DECRYPT keys use GOOGLE_SYMMETRIC_ENCRYPTION.")
        duration = body.get("destroyScheduledDuration", "2592000s")
        if not 86400 <= _seconds(duration) <= 120 * 86400:
            raise ApiError(400, "INVALID_ARGUMENT", "destroyScheduledDuration must be 24 hours to 120 days.")
        key = {
            "name": name,
            "purpose": purpose,
            "createTime": _stamp(self.now()),
            "versionTemplate": {
                "algorithm": algorithm,
                "protectionLevel": _enum(_PROTECTION, template.get("protectionLevel", 1) or 1),
            },
            "labels": dict(body.get("labels") or {}),
            "destroyScheduledDuration": duration,
        }
        self.keys[name] = key
        self.versions[name] = []
        if body.get("importOnly"):
            key["importOnly"] = True
        if not skip_version and not body.get("importOnly"):
            version = self._new_version(key)
            if purpose == "ENCRYPT_DECRYPT":
                key["primaryId"] = version["name"].rsplit("/", 1)[-1]
        return self._key_view(key)

    def patch_key(self, name: str, body: dict[str, Any], mask: list[str]) -> dict[str, Any]:
        key = self._key(name)
        for path in mask:
            field = re.sub(r"_(\w)", lambda m: m.group(1).upper(), path)
            if field not in ("rotationPeriod", "nextRotationTime", "labels"):
                raise ApiError(400, "INVALID_ARGUMENT", f"updateMask path {path} is not updatable.")
            if field == "rotationPeriod" and key["purpose"] != "ENCRYPT_DECRYPT":
                raise ApiError(400, "FAILED_PRECONDITION", "Only symmetric keys rotate automatically.")
            key[field] = body.get(field)
        return self._key_view(key)

    def update_primary(self, name: str, version_id: str) -> dict[str, Any]:
        key = self._key(name)
        if key["purpose"] != "ENCRYPT_DECRYPT":
            raise ApiError(400, "FAILED_PRECONDITION", "Only ENCRYPT_DECRYPT keys have a primary version.")
        version = self._version(f"{name}/cryptoKeyVersions/{version_id}")
        if version["state"] != "ENABLED":
            raise ApiError(400, "FAILED_PRECONDITION", f"{version['name']} is not ENABLED.")
        key["primaryId"] = version_id
        return self._key_view(key)

    def list_versions(self, parent: str) -> list[dict[str, Any]]:
        self._key(parent)
        for version in self.versions[parent]:
            self._settle(version)
        return self.versions[parent]

    def patch_version(self, name: str, body: dict[str, Any], mask: list[str]) -> dict[str, Any]:
        version = self._version(name)
        if mask != ["state"]:
            raise ApiError(400, "INVALID_ARGUMENT", "Only state is updatable on a CryptoKeyVersion.")
        target = _enum(_STATE, body.get("state", 0))
        if target not in ("ENABLED", "DISABLED") or version["state"] not in ("ENABLED", "DISABLED"):
            raise ApiError(400, "FAILED_PRECONDITION", f"{name} is {version['state']}; cannot become {target}.")
        version["state"] = target
        return version

    def destroy(self, name: str) -> dict[str, Any]:
        version = self._version(name)
        if version["state"] not in ("ENABLED", "DISABLED"):
            raise ApiError(400, "FAILED_PRECONDITION", f"{name} is {version['state']}.")
        key = self._key(name.rsplit("/cryptoKeyVersions/", 1)[0])
        version["state"] = "DESTROY_SCHEDULED"
        version["destroyTime"] = _stamp(self.now() + timedelta(seconds=_seconds(key["destroyScheduledDuration"])))
        return version

    def restore(self, name: str) -> dict[str, Any]:
        version = self._version(name)
        if version["state"] != "DESTROY_SCHEDULED":
            raise ApiError(400, "FAILED_PRECONDITION", f"{name} is {version['state']}, not DESTROY_SCHEDULED.")
        version["state"] = "DISABLED"
        version.pop("destroyTime", None)
        return version

    def create_import_job(self, parent: str, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        method = _enum(kms.ImportJob.ImportMethod, body.get("importMethod", 0))
        if method not in ("RSA_OAEP_3072_SHA256_AES_256", "RSA_OAEP_4096_SHA256_AES_256"):
            raise ApiError(400, "INVALID_ARGUMENT", f"import method {method} is not served here")
        name = f"{parent}/importJobs/{job_id}"
        if name in self.import_jobs:
            raise ApiError(409, "ALREADY_EXISTS", f"ImportJob {name} already exists.")
        private = rsa.generate_private_key(public_exponent=65537, key_size=3072 if "3072" in method else 4096)
        pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        now = self.now()
        self.import_private[name] = private
        self.import_jobs[name] = {
            "name": name,
            "importMethod": method,
            "protectionLevel": _enum(_PROTECTION, body.get("protectionLevel", 1) or 1),
            "createTime": _stamp(now),
            "expireTime": _stamp(now + timedelta(days=3)),
            "state": "ACTIVE",
            "publicKey": {"pem": pem.decode()},
        }
        return self.import_jobs[name]

    def import_version(self, parent: str, body: dict[str, Any]) -> dict[str, Any]:
        """cryptoKeyVersions:import: RSA-OAEP-SHA256 of an ephemeral AES key, then AES-KWP of the key."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap_with_padding

        key = self._key(parent)
        job = self.import_jobs.get(body.get("importJob", ""))
        if job is None:
            raise ApiError(404, "NOT_FOUND", f"ImportJob {body.get('importJob')} not found.")
        algorithm = _enum(_ALGO, body.get("algorithm", 0))
        if algorithm != key["versionTemplate"]["algorithm"]:
            raise ApiError(
                400, "INVALID_ARGUMENT", f"{algorithm} does not match the key's {key['versionTemplate']['algorithm']}."
            )
        wrapped = base64.b64decode(body.get("wrappedKey") or body.get("rsaAesWrappedKey") or "")
        private = self.import_private[job["name"]]
        head = private.key_size // 8
        oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
        try:
            material = aes_key_unwrap_with_padding(private.decrypt(wrapped[:head], oaep), wrapped[head:])
        except (ValueError, InvalidUnwrap):
            raise ApiError(400, "INVALID_ARGUMENT", "wrappedKey does not unwrap with the import job's key.") from None
        if algorithm == "GOOGLE_SYMMETRIC_ENCRYPTION" and len(material) != 32:
            raise ApiError(400, "INVALID_ARGUMENT", "GOOGLE_SYMMETRIC_ENCRYPTION keys are 32 bytes.")
        version = self._new_version(key)
        version["importJob"] = job["name"]
        version["importTime"] = _stamp(self.now())
        if key["purpose"] == "ENCRYPT_DECRYPT":
            self.material[version["name"]] = material
        return version

    def encrypt(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        key = self._key(name)
        if not key.get("primaryId"):
            raise ApiError(400, "FAILED_PRECONDITION", f"{name} has no primary version.")
        version = self._version(f"{name}/cryptoKeyVersions/{key['primaryId']}")
        if version["state"] != "ENABLED":
            raise ApiError(400, "FAILED_PRECONDITION", f"{version['name']} is not ENABLED.")
        nonce = os.urandom(12)
        sealed = AESGCM(self.material[version["name"]]).encrypt(nonce, base64.b64decode(body["plaintext"]), None)
        number = int(key["primaryId"]).to_bytes(4, "big")
        return {"name": version["name"], "ciphertext": base64.b64encode(number + nonce + sealed).decode()}

    def decrypt(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self._key(name)
        blob = base64.b64decode(body["ciphertext"])
        version = self._version(f"{name}/cryptoKeyVersions/{int.from_bytes(blob[:4], 'big')}")
        if version["state"] != "ENABLED":
            raise ApiError(400, "FAILED_PRECONDITION", f"{version['name']} is not ENABLED.")
        plain = AESGCM(self.material[version["name"]]).decrypt(blob[4:16], blob[16:], None)
        return {"plaintext": base64.b64encode(plain).decode(), "usedPrimary": False}

    # -- routing -----------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any]) -> dict[str, Any]:
        name, _, verb = unquote(path.removeprefix("/v1/")).partition(":")
        mask = [p for item in query.get("updateMask", []) for p in item.split(",") if p]
        self.calls.append((method, f"{name}:{verb}" if verb else name))
        with self.lock:
            if method == "POST" and name.endswith("/cryptoKeys") and not verb:
                skip = query.get("skipInitialVersionCreation", ["false"])[0] == "true"
                return self.create_key(name.removesuffix("/cryptoKeys"), query.get("cryptoKeyId", [""])[0], body, skip)
            if method == "GET" and name.endswith("/cryptoKeys"):
                ring = name.removesuffix("/cryptoKeys")
                return {"cryptoKeys": [self._key_view(k) for n, k in self.keys.items() if n.startswith(ring + "/")]}
            if method == "POST" and name.endswith("/importJobs"):
                return self.create_import_job(name.removesuffix("/importJobs"), query.get("importJobId", [""])[0], body)
            if method == "GET" and "/importJobs/" in name and name in self.import_jobs:
                return self.import_jobs[name]
            if method == "POST" and name.endswith("/cryptoKeyVersions") and verb == "import":
                return self.import_version(name.removesuffix("/cryptoKeyVersions"), body)
            if method == "POST" and name.endswith("/cryptoKeyVersions"):
                version = self._new_version(self._key(name.removesuffix("/cryptoKeyVersions")))
                return version
            if method == "GET" and name.endswith("/cryptoKeyVersions"):
                return {"cryptoKeyVersions": self.list_versions(name.removesuffix("/cryptoKeyVersions"))}
            if _VERSION.match(name):
                if method == "GET":
                    return self._version(name)
                if method == "PATCH":
                    return self.patch_version(name, body, mask)
                if method == "POST" and verb == "destroy":
                    return self.destroy(name)
                if method == "POST" and verb == "restore":
                    return self.restore(name)
            if _KEY.match(name):
                if method == "GET":
                    return self._key_view(self._key(name))
                if method == "PATCH":
                    return self.patch_key(name, body, mask)
                if method == "POST" and verb == "updatePrimaryVersion":
                    return self.update_primary(name, str(body.get("cryptoKeyVersionId", "")))
                if method == "POST" and verb == "encrypt":
                    return self.encrypt(name, body)
                if method == "POST" and verb == "decrypt":
                    return self.decrypt(name, body)
        raise ApiError(404, "NOT_FOUND", f"no route for {method} {path}")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _handler(state: FakeCloudKms) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
                out, code = state.handle(self.command, parts.path, parse_qs(parts.query), body), 200
            except ApiError as exc:
                out, code = {"error": {"code": exc.code, "message": exc.message, "status": exc.status}}, exc.code
            data = json.dumps(out).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve

    return Handler


@contextmanager
def serve() -> Iterator[tuple[FakeCloudKms, str]]:
    """Run the server on a free local port; yields (state, ``http://127.0.0.1:PORT``)."""
    state = FakeCloudKms()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def client(endpoint: str) -> Any:
    """The real client library, REST transport, anonymous credentials, pointed at ``endpoint``."""
    from google.auth.credentials import AnonymousCredentials

    return kms.KeyManagementServiceClient(
        credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": endpoint}
    )
