"""Run one operation request against one backend and answer in the specification's response shape.

Every request is written to the hash-chained audit log twice: ``requested`` before the provider is
touched and ``succeeded`` or ``failed`` after, so a crash between the two leaves a visible, unmatched
entry rather than silence. Audit entries and responses carry identifiers, versions and outcomes, never
key material. ``destroy`` only proposes a destruction (actions/destruction.py carries it through
approvals, soak and certificate). ``policy-check`` and ``audit`` run the stream's inventory rules
over what the key manager says now (actions/compliance.py).
"""

from __future__ import annotations

import functools
import os
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from actions.audit_log import AuditLog
from actions.backends.base import (
    BackendError,
    Capability,
    InvalidKeyState,
    KeyBackend,
    KeyInfo,
    KeySpec,
    Unsupported,
)
from actions.compliance import backend_infos, compliance_status, expiring, fips_status, inventory_findings
from actions.destruction import REQUIRED_APPROVALS, DestructionPipeline, DestructionRefused
from actions.inventory_publish import key_entry
from actions.key_names import name_in_backend
from actions.request import RequestError, rotation_policy, validate_request
from actions.resilience import retrying, rotate_once
from actions.scheduler import PolicyStore
from ingest.schema import format_timestamp
from streams.policy import Policy, load_policy

BUILT = ("generate", "rotate", "destroy", "audit", "policy-check", "inventory")
AUDIT_PERIOD = timedelta(days=30)
# a rollback undoes a rotation that broke a consumer; weeks later, data encrypted under the new
# version would be stranded on a key no longer current, so after this the answer is a new rotation
ROLLBACK_WINDOW = timedelta(days=7)
# (key uris, period start) -> (rotations completed, unused key uris), or None without a warehouse
WarehouseSummary = Callable[[list[str], datetime], tuple[int, list[str]] | None]


class NotBuilt(RequestError):
    """A valid request for an operation this version cannot carry out yet."""


DATA_SET_LABEL = "kmo-dataset"  # the label naming the data set a data key protects (crypto-shredding)
DATA_SET = re.compile(r"^[a-z0-9_-]{1,63}$")  # what every labelling provider accepts (GCP is strictest)
GENERATION_RECORD = "_generation"  # carried from _generate to the audit entry, not into the response


def _key_name(doc: dict[str, Any]) -> str:
    """The key's name inside its manager, from ``keyId`` (a kmo uri, a provider id, or a bare name)."""
    return name_in_backend(doc["keyId"])


def _generate(
    doc: dict[str, Any],
    backend: KeyBackend,
    policy: Policy,
    policies: PolicyStore | None = None,
    keystore: str | None = None,
    data_set: str | None = None,
) -> dict[str, Any]:
    missing = [f for f in ("keyType", "algorithm") if f not in doc]
    if missing:
        raise RequestError([f"{f}: required for generate" for f in missing])
    labels = {}
    if data_set is not None:
        if not DATA_SET.match(data_set):
            raise RequestError(["data set: 1-63 lowercase letters, digits, '-' or '_'"])
        if not getattr(backend, "holds_labels", False):
            raise Unsupported(
                str(backend.system), "generate", doc.get("keyId"), "keys here carry no labels for a data set"
            )
        labels[DATA_SET_LABEL] = data_set
    name = _key_name(doc) if "keyId" in doc else f"kmo-{doc['keyType']}-{uuid.uuid4().hex[:12]}"
    info = backend.generate(KeySpec(name=name, key_type=doc["keyType"], algorithm=doc["algorithm"], labels=labels))
    out: dict[str, Any] = {"keyInfo": {**info.to_schema(), "keyType": doc["keyType"]}}
    policy_days = policy.rotation_days.get(doc["keyType"])
    rp = rotation_policy(doc)
    recommendations = []
    if rp and rp.auto_rotate and rp.max_age:
        if hasattr(backend, "set_rotation_period"):
            try:
                backend.set_rotation_period(name, rp.max_age)
            except Unsupported as exc:  # the key exists; say what the provider could not do
                recommendations.append(exc.reason)
        else:
            recommendations.append(
                f"{backend.system} cannot rotate on its own schedule; run kmo scheduler, which rotates it when due"
            )
    if policy_days and (rp is None or rp.max_age is None):
        recommendations.append(f"no rotationPolicy.maxAge given; policy for {doc['keyType']} keys is {policy_days}d")
    elif policy_days and rp and rp.max_age and rp.max_age.days > policy_days:
        recommendations.append(
            f"rotationPolicy.maxAge {rp.max_age.days}d exceeds the {policy_days}d cryptoperiod"
            f" for {doc['keyType']} keys"
        )
    if rp and policies is not None:
        policies.save(info, name, rp, keystore=keystore)  # kmo scheduler enforces it from now on
    if recommendations:
        out["recommendations"] = recommendations
    out[GENERATION_RECORD] = generation_record(backend, info)
    return out


def generation_record(backend: KeyBackend, info: KeyInfo) -> dict[str, Any]:
    """What SP 800-57 and PCI-DSS 3.6.1 ask to be known about a key's making (the audit entry adds
    who and when): where, algorithm and size, the entropy source, the module and its FIPS status."""
    made = dict(getattr(backend, "generation", {}) or {})
    validated, what = fips_status(str(backend.system), os.environ.get("KMO_HSM_FIPS_CERT"))
    return {
        "where": f"{backend.system} {info.ref.uri}",
        "algorithm": info.algorithm,
        "keySize": info.key_size,
        "entropySource": made.get("entropy_source", "not declared by the adapter"),
        "module": made.get("module", str(backend.system)),
        "fipsValidated": validated,
        "fipsValidation": what,
    }


def _rotate(doc: dict[str, Any], backend: KeyBackend, rollback_to: int | None = None) -> dict[str, Any]:
    """Rotate to a new version, or (``rollback_to``) make an earlier version current again where the
    provider allows it: a rotation that broke a consumer is undone without touching key material."""
    if "keyId" not in doc:
        raise RequestError(["keyId: required for rotate"])
    name = _key_name(doc)
    before = retrying(functools.partial(backend.describe, name))
    if rollback_to is not None and Capability.ROLLBACK in backend.capabilities:
        since = before.current_since
        if since is not None and datetime.now(UTC) - since > ROLLBACK_WINDOW:
            raise InvalidKeyState(
                str(backend.system),
                "rollback",
                name,
                f"the rollback window ({ROLLBACK_WINDOW.days} days after a rotation) has passed; rotate forward",
            )
    # an adapter without rollback refuses with its own reason; a rotation is retried, never repeated
    after = rotate_once(backend, name)[0] if rollback_to is None else backend.rollback(name, rollback_to)
    return {
        "keyInfo": after.to_schema(),
        "rotationStatus": {
            "previousVersion": before.version,
            "newVersion": after.version,
            "rotatedAt": format_timestamp(datetime.now(UTC)),
            "affectedSystems": [],
            "rollbackAvailable": Capability.ROLLBACK in backend.capabilities,
        },
    }


def _inventory(backend: KeyBackend) -> dict[str, Any]:
    keys = backend.list_keys()
    return {
        "auditReport": {"keysInventoried": len(keys)},
        "keys": [key_entry(k) for k in keys],  # an extension: the schema has no list of keys
    }


def _propose_destruction(
    doc: dict[str, Any], backend: KeyBackend, actor: str, pipeline: DestructionPipeline | None, operation_id: str
) -> dict[str, Any]:
    """A destroy request starts the pipeline; it never destroys in one call."""
    if "keyId" not in doc:
        raise RequestError(["keyId: required for destroy"])
    if pipeline is None:
        raise NotBuilt(["operation: destroy needs the destruction pipeline (kmo run provides it)"])
    name = _key_name(doc)
    try:
        proposal = pipeline.propose(backend, name, proposer=actor, reason=f"kmo run request {operation_id}")
    except DestructionRefused as exc:
        raise RequestError([f"keyId: {exc}"]) from exc
    out: dict[str, Any] = {
        "keyInfo": backend.describe(name).to_schema(),
        "recommendations": [
            f"destruction proposal {proposal['id']} awaits {REQUIRED_APPROVALS} custodian approvals: "
            f"kmo destroy approve {proposal['id']} (run by each custodian), then kmo destroy execute and complete"
        ],
    }
    if doc.get("destructionVerification"):
        out["recommendations"].append("a signed destruction certificate is issued by kmo destroy complete")
    return out


def _policy_check(doc: dict[str, Any], backend: KeyBackend, policy: Policy, now: datetime) -> dict[str, Any]:
    infos = backend_infos(backend, _key_name(doc) if "keyId" in doc else None)
    findings = inventory_findings(infos, str(backend.system), policy, now)
    frameworks = doc.get("complianceFrameworks") or ["NIST"]
    status = compliance_status(findings, frameworks, str(backend.system), os.environ.get("KMO_HSM_FIPS_CERT"))
    out: dict[str, Any] = {"complianceStatus": status}
    runbooks = sorted({f"{f.rule_id}: {f.message}" for f in findings})
    if runbooks:
        out["recommendations"] = runbooks
    return out


def _audit(
    doc: dict[str, Any], backend: KeyBackend, policy: Policy, now: datetime, warehouse: WarehouseSummary | None
) -> dict[str, Any]:
    infos = backend_infos(backend, _key_name(doc) if "keyId" in doc else None)
    start = now - AUDIT_PERIOD
    findings = inventory_findings(infos, str(backend.system), policy, now)
    rp = rotation_policy(doc)
    notify = rp.notify_before if rp and rp.notify_before else timedelta(days=30)
    report: dict[str, Any] = {
        "period": {"start": format_timestamp(start), "end": format_timestamp(now)},
        "keysInventoried": len(infos),
        "policyViolations": len(findings),
        "expiringKeys": expiring(infos, policy, now, notify),
    }
    out: dict[str, Any] = {"auditReport": report}
    summary = warehouse([i.ref.uri for i in infos], start) if warehouse else None
    if summary is None:
        out["recommendations"] = [
            "no audit warehouse answered: rotationsCompleted and unusedKeys are not reported (run kmo sink)"
        ]
    else:
        report["rotationsCompleted"], report["unusedKeys"] = summary
    return out


def execute(
    doc: Any,
    backend: KeyBackend,
    audit: AuditLog,
    *,
    actor: str,
    policy: Policy | None = None,
    destruction: DestructionPipeline | None = None,
    warehouse: WarehouseSummary | None = None,
    policies: PolicyStore | None = None,
    keystore: str | None = None,
    now: datetime | None = None,
    rollback_to: int | None = None,
    data_set: str | None = None,
) -> dict[str, Any]:
    """Validate, audit, run, audit. Returns the response; raises RequestError or BackendError.

    ``rollback_to`` turns a rotate into a rollback to that version, and ``data_set`` labels a generated
    key with the data set it protects (for crypto-shredding). The specification's request has no
    fields for them, so they come from ``kmo rotate --rollback-to`` / ``kmo generate --data-set``
    and are audited with the request.

    A request that fails validation is refused before it is audited as ``requested`` (nothing was
    attempted), but the refusal itself is audited so probing leaves a trace.
    """
    operation_id = str(uuid.uuid4())
    try:
        validate_request(doc)
        if doc["operation"] not in BUILT:
            raise NotBuilt([f"operation: {doc['operation']!r} is not built yet (built: {', '.join(BUILT)})"])
        if rollback_to is not None and doc["operation"] != "rotate":
            raise RequestError([f"operation: a rollback is a rotate, not {doc['operation']!r}"])
        if data_set is not None and doc["operation"] != "generate":
            raise RequestError([f"operation: a data set is given when generating, not to {doc['operation']!r}"])
    except RequestError as exc:
        audit.append({"operationId": operation_id, "outcome": "refused", "actor": actor, "reason": str(exc)[:500]})
        raise
    base = {
        "operationId": operation_id,
        "operation": doc["operation"],
        "actor": actor,
        "system": str(backend.system),
        "keyId": doc.get("keyId"),
    }
    if rollback_to is not None:
        base["rollbackTo"] = rollback_to
    if data_set is not None:
        base["dataSet"] = data_set
    audit.append({**base, "outcome": "requested"})
    try:
        if doc["operation"] == "generate":
            result = _generate(doc, backend, policy or load_policy(), policies, keystore, data_set)
        elif doc["operation"] == "rotate":
            result = _rotate(doc, backend, rollback_to)
        elif doc["operation"] == "destroy":
            result = _propose_destruction(doc, backend, actor, destruction, operation_id)
        elif doc["operation"] == "policy-check":
            result = _policy_check(doc, backend, policy or load_policy(), now or datetime.now(UTC))
        elif doc["operation"] == "audit":
            result = _audit(doc, backend, policy or load_policy(), now or datetime.now(UTC), warehouse)
        else:
            result = _inventory(backend)
    except (BackendError, RequestError) as exc:
        audit.append({**base, "outcome": "failed", "error": f"{type(exc).__name__}: {exc}"})
        raise
    key_info = result.get("keyInfo", {})
    made = result.pop(GENERATION_RECORD, None)
    audit.append(
        {
            **base,
            "outcome": "succeeded",
            "keyId": key_info.get("keyId", base["keyId"]),
            "version": key_info.get("version"),
            **({"generation": made} if made else {}),
        }
    )
    return {
        "operationId": operation_id,
        "operation": doc["operation"],
        "timestamp": format_timestamp(datetime.now(UTC)),
        **result,
    }
