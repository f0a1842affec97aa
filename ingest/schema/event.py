"""KeyEvent: the one normalised audit event every kmo component reads and writes.

In memory it is a flat, typed record (so detection rules read ``event.op`` and ``event.key``,
never raw provider JSON). On the wire it is OCSF (``to_ocsf``/``from_ocsf``):

* key usage and reads are **API Activity (6003)**; lifecycle changes are **Entity Management (3004)**;
  ``type_uid`` is derived from class and activity;
* the key is ``resources[0]`` with ``type = "crypto_key"`` and ``uid`` = the canonical key uri
  (:mod:`ingest.schema.keyref`); kmo's typed key facts sit in ``resources[0].data.kms``, which OCSF
  leaves to the producer, so the event stays valid OCSF;
* ``metadata.uid`` is kmo's deterministic event id (see :func:`event_uid`), so replaying a log never
  creates a second copy anywhere downstream;
* ``raw_data`` keeps the provider's record verbatim.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from ingest.schema.keyops import KeyOp
from ingest.schema.keyref import KeyRef, Provider
from ingest.schema.ocsf import OCSF_VERSION, SeverityId, StatusId, type_uid
from ingest.schema.timestamps import format_timestamp, parse_timestamp

PRODUCT = {"name": "kmo", "vendor_name": "kmo project"}
# OCSF's cloud.provider names the vendor; kmo's own provider enum travels in metadata.log_provider.
_CLOUD_VENDOR = {Provider.AWS_KMS: "AWS", Provider.GCP_KMS: "GCP", Provider.AZURE_KEYVAULT: "Azure"}


@dataclass(slots=True, kw_only=True)
class Actor:
    """Who acted. ``principal`` is the stable identity rules key on (an ARN, an email, an entity id)."""

    principal: str | None = None
    principal_type: str | None = None  # IAMUser, AssumedRole, AWSService, ServiceAccount, token, ...
    name: str | None = None  # a human-readable name or session name
    account: str | None = None  # the principal's own account/project/tenant
    invoked_by: str | None = None  # a service acting for the principal (secretsmanager.amazonaws.com)


@dataclass(slots=True, kw_only=True)
class KeyEvent:
    """One key-related audit record, normalised. See the module docstring for the wire form."""

    uid: str
    time: datetime
    source: str  # parser that produced it: "aws.cloudtrail", "vault.audit", ...
    provider: Provider
    op: KeyOp
    operation: str  # the provider's own operation name (eventName, request path, methodName)
    success: bool
    error_code: str | None = None
    error_message: str | None = None
    key: KeyRef | None = None  # None for key-less calls (GenerateRandom, ListAliases)
    key_version: str | None = None
    key_alias: str | None = None
    related_keys: tuple[KeyRef, ...] = ()  # other keys in the same call (ReEncrypt destination)
    actor: Actor = field(default_factory=Actor)
    src_ip: str | None = None
    user_agent: str | None = None
    region: str | None = None
    account: str | None = None  # where the key lives: AWS account, GCP project, vault cluster
    service: str | None = None  # provider API endpoint (kms.amazonaws.com)
    provider_event_id: str | None = None
    request_id: str | None = None
    context_keys: tuple[str, ...] = ()  # encryption-context *keys* only; values never leave the log
    details: dict[str, Any] = field(default_factory=dict)  # typed facts a parser extracted for rules
    raw: str = ""  # the provider's record, verbatim
    origin: str = ""  # where it was read: file and record position, S3 object, socket

    @property
    def partition_key(self) -> bytes:
        """Kafka key: the key uri, so one key's events stay ordered on one partition."""
        if self.key is not None:
            return self.key.uri.encode()
        return f"{self.provider}:{self.account or '-'}:{self.region or '-'}".encode()

    def to_ocsf(self) -> dict[str, Any]:
        """The OCSF wire form (a JSON-ready dict)."""
        cls = self.op.event_class
        activity = self.op.activity_id
        status = StatusId.SUCCESS if self.success else StatusId.FAILURE
        kms: dict[str, Any] = {"op": str(self.op), "provider": str(self.provider)}
        if self.key_version is not None:
            kms["version"] = self.key_version
        resources: list[dict[str, Any]] = []
        if self.key is not None:
            res: dict[str, Any] = {"type": "crypto_key", "uid": self.key.uri, "data": {"kms": kms}}
            if self.key_alias:
                res["name"] = self.key_alias
            resources.append(res)
        resources.extend({"type": "crypto_key", "uid": k.uri} for k in self.related_keys)
        user: dict[str, Any] = {}
        if self.actor.principal is not None:
            user["uid"] = self.actor.principal
        if self.actor.name is not None:
            user["name"] = self.actor.name
        if self.actor.principal_type is not None:
            user["type"] = self.actor.principal_type
        if self.actor.account is not None:
            user["account"] = {"uid": self.actor.account}
        actor: dict[str, Any] = {"user": user}
        if self.actor.invoked_by is not None:
            actor["invoked_by"] = self.actor.invoked_by
        api: dict[str, Any] = {"operation": self.operation}
        if self.service:
            api["service"] = {"name": self.service}
        if self.request_id:
            api["request"] = {"uid": self.request_id}
        if not self.success or self.error_code or self.error_message:
            api["response"] = {"error": self.error_code, "error_message": self.error_message}
        out: dict[str, Any] = {
            "class_uid": int(cls),
            "category_uid": int(cls.category),
            "activity_id": activity,
            "activity_name": str(self.op),
            "type_uid": type_uid(int(cls), activity),
            "time": int(self.time.timestamp() * 1000),
            "time_dt": format_timestamp(self.time),
            "severity_id": int(SeverityId.INFORMATIONAL),
            "status_id": int(status),
            "metadata": {
                "version": OCSF_VERSION,
                "product": PRODUCT,
                "uid": self.uid,
                "log_name": self.source,
                "log_provider": str(self.provider),
            },
            "actor": actor,
            "api": api,
            "src_endpoint": {"ip": self.src_ip} if self.src_ip else {},
            "cloud": {
                "provider": _CLOUD_VENDOR.get(self.provider, "on-premises"),
                "region": self.region,
                "account": {"uid": self.account},
            },
            "resources": resources,
            "unmapped": {
                "provider_event_id": self.provider_event_id,
                "origin": self.origin,
                "context_keys": list(self.context_keys),
                "details": self.details,
            },
            "raw_data": self.raw,
        }
        if self.error_code:
            out["status_code"] = self.error_code
        if self.error_message:
            out["status_detail"] = self.error_message
        if self.user_agent:
            out["http_request"] = {"user_agent": self.user_agent}
        if self.key is None and self.key_alias:
            # an alias that could not be resolved to a key still names what the caller addressed
            out["unmapped"]["key_alias"] = self.key_alias
        return out

    @classmethod
    def from_ocsf(cls, doc: dict[str, Any]) -> KeyEvent:
        """Rebuild an event from its wire form.

        Raises:
            KeyError, TypeError, ValueError: when a required field is missing or of the wrong kind;
                :func:`ingest.schema.codec.decode` turns these into one ``DecodeError``.
        """
        meta = doc["metadata"]
        provider = Provider(meta["log_provider"])
        resources = doc.get("resources") or []
        key = None
        kms: dict[str, Any] = {}
        alias = None
        related: tuple[KeyRef, ...] = ()
        op = KeyOp(doc["activity_name"])
        if resources and "data" in resources[0]:
            first = resources[0]
            key = KeyRef(provider, first["uid"])
            kms = first["data"]["kms"]
            alias = first.get("name")
            related = tuple(KeyRef(provider, r["uid"]) for r in resources[1:])
        else:
            related = tuple(KeyRef(provider, r["uid"]) for r in resources)
            alias = (doc.get("unmapped") or {}).get("key_alias")
        user = doc.get("actor", {}).get("user", {})
        api = doc.get("api", {})
        response = api.get("response") or {}
        cloud = doc.get("cloud") or {}
        unmapped = doc.get("unmapped") or {}
        return cls(
            uid=meta["uid"],
            time=parse_timestamp(doc["time_dt"]),
            source=meta["log_name"],
            provider=provider,
            op=op,
            operation=api["operation"],
            success=doc["status_id"] == StatusId.SUCCESS,
            error_code=response.get("error"),
            error_message=response.get("error_message"),
            key=key,
            key_version=kms.get("version"),
            key_alias=alias,
            related_keys=related,
            actor=Actor(
                principal=user.get("uid"),
                principal_type=user.get("type"),
                name=user.get("name"),
                account=(user.get("account") or {}).get("uid"),
                invoked_by=doc.get("actor", {}).get("invoked_by"),
            ),
            src_ip=(doc.get("src_endpoint") or {}).get("ip"),
            user_agent=(doc.get("http_request") or {}).get("user_agent"),
            region=cloud.get("region"),
            account=(cloud.get("account") or {}).get("uid"),
            service=(api.get("service") or {}).get("name"),
            provider_event_id=unmapped.get("provider_event_id"),
            request_id=(api.get("request") or {}).get("uid"),
            context_keys=tuple(unmapped.get("context_keys") or ()),
            details=dict(unmapped.get("details") or {}),
            raw=doc.get("raw_data", ""),
            origin=unmapped.get("origin", ""),
        )


def event_uid(source: str, provider_event_id: str | None, record: Any, *, identity: Any = None) -> str:
    """kmo's deterministic event id: ``<source>:<provider event id>:<digest>``.

    The digest is SHA-256 over the record's canonical JSON (sorted keys, no whitespace), so:

    * the same record read twice (a replay, a re-run, an org trail and an account trail delivering
      one event) gets the same uid, whatever its formatting;
    * two different records that share a provider id never collapse into one. This is not
      hypothetical: AWS's KMS documentation examples reuse one ``eventID`` for up to five different
      records, and rule-test fixtures use ``"eventID": "1"``.

    Records without a provider id get ``<source>:sha256:<full digest>``. ``identity``, when given,
    is digested instead of the whole record: Vault logs one request through several audit devices,
    each HMAC-ing strings with its own salt, so only the unhashed fields identify the request.

    Raises:
        ValueError: when the record cannot be canonicalised at all (nested beyond recursion limits).
    """
    digest = hashlib.sha256(canonical_json(record if identity is None else identity)).hexdigest()
    if provider_event_id:
        return f"{source}:{provider_event_id}:{digest[:16]}"
    return f"{source}:sha256:{digest}"


def canonical_json(value: Any) -> bytes:
    """Sorted-key compact JSON. orjson for speed; the standard library for what orjson refuses
    (integers beyond 64 bits, lone surrogates from ``\\ud800`` escapes), so the same record always
    yields the same bytes."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        pass
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    except (RecursionError, ValueError, TypeError) as exc:
        raise ValueError(f"record cannot be canonicalised: {type(exc).__name__}") from None
