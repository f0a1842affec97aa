"""Key destruction as a pipeline, never one call.

1. **propose**: who wants which key destroyed and why. Refused when the warehouse shows the key in
   use within the last ``recent_days`` (or when there is no warehouse to ask) unless the proposer
   overrides with a reason, which is recorded.
2. **approve**: two different custodians, neither of them the proposer (dual control). Approvals are
   recorded before anything touches the key.
3. **execute**: disable the key where the provider can, then schedule destruction in the provider's
   pending window; where the provider destroys at once (Vault transit, PKCS#11), kmo keeps its own
   soak period instead and the key stays intact until it ends.
4. **complete**: after the window, destroy (or, where the provider destroys by itself, confirm it is
   gone), then issue a destruction certificate signed with kmo's Ed25519 key.

Each proposal is a 0600 JSON file under ``$KMO_HOME/actions/destructions``; every step is a
hash-chained audit entry. Cancelling is possible until completion. Once custodians are registered
(:mod:`actions.custodians`), an approval is valid only with the approver's Ed25519 signature over
:func:`approval_statement`, which names the proposal: one person cannot approve twice under two
names, and an approval cannot be replayed onto another proposal or forged.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from actions.audit_log import AuditLog
from actions.backends.base import Capability, InvalidKeyState, KeyBackend, KeyInfo, KeyNotFound
from actions.certificate import issue, signing_key
from actions.custodians import CustodianRefused, CustodianRegistry, Signed, statement
from actions.private_files import write_private
from ingest.schema import format_timestamp, parse_timestamp

REQUIRED_APPROVALS = 2
# (uses in the window, time of the last use); None when there is no warehouse to ask
UsageLookup = Callable[[str, datetime], tuple[int, datetime | None] | None]
# every backup or export of a key's material on record; None when there is no warehouse to ask
BackupLookup = Callable[[str], list[dict[str, Any]] | None]


class DestructionRefused(Exception):
    """A step of the pipeline that may not happen (yet); the message says what is missing."""


def approval_statement(doc: dict[str, Any], custodian: str) -> bytes:
    """What a custodian signs to approve a destruction: this proposal, this key, this approver."""
    return statement(
        "kmo-destruction-approval",
        proposalId=doc["id"],
        keyId=doc["keyId"],
        system=doc["system"],
        reason=doc["reason"],
        approver=custodian,
    )


def warehouse_usage(settings: Any) -> UsageLookup:
    """Successful uses of a key since a time, from the audit warehouse (through the sink when it runs)."""

    def lookup(key_uri: str, since: datetime) -> tuple[int, datetime | None] | None:
        from analytics.query import QueryError, run_query

        try:
            table = run_query(
                settings,
                "SELECT count(*) AS n, max(time) AS last FROM events WHERE key_uri = ? AND is_usage AND success "
                "AND time >= ?",
                [key_uri, since],
            )
        except QueryError:
            return None
        row = table.to_pylist()[0]
        return int(row["n"]), row["last"]

    return lookup


def warehouse_backups(settings: Any) -> BackupLookup:
    """Backups and exports of a key's material the audit logs recorded (Vault transit backup/export,
    Key Vault backup, ...): copies a destruction has to account for, or it destroys only one copy."""

    def lookup(key_uri: str) -> list[dict[str, Any]] | None:
        from analytics.query import QueryError, run_query

        try:
            table = run_query(
                settings,
                "SELECT time, op, actor_principal AS actor, source FROM events "
                "WHERE key_uri = ? AND op IN ('backup', 'export') AND success ORDER BY time",
                [key_uri],
            )
        except QueryError:
            return None
        return [r | {"time": format_timestamp(r["time"])} for r in table.to_pylist()]

    return lookup


KMO_COPIES = ("hsm-backup", "hsm-replicate")  # kmo's own copies of key material, from its audit log


def audit_backups(audit: AuditLog) -> BackupLookup:
    """Copies kmo itself made (HSM backups to files, replicas on other tokens), from its audit log."""

    def lookup(key_uri: str) -> list[dict[str, Any]]:
        return [
            {
                "time": e["time"],
                "op": e["operation"],
                "actor": e.get("actor"),
                "source": "kmo audit log",
                "where": e.get("where"),
            }
            for e in audit.entries()
            if e.get("operation") in KMO_COPIES and e.get("outcome") == "succeeded" and e.get("keyId") == key_uri
        ]

    return lookup


def all_backups(*lookups: BackupLookup) -> BackupLookup:
    """Every lookup's copies together; None only when none of them could answer."""

    def lookup(key_uri: str) -> list[dict[str, Any]] | None:
        answers = [found(key_uri) for found in lookups]
        known = [a for a in answers if a is not None]
        return sorted((c for a in known for c in a), key=lambda c: str(c["time"])) if known else None

    return lookup


class DestructionPipeline:
    """Proposals on disk, one backend per call (the caller picks it from the proposal's system)."""

    def __init__(
        self,
        home: Path,
        audit: AuditLog,
        usage: UsageLookup,
        *,
        recent_days: int = 30,
        backups: BackupLookup | None = None,
    ) -> None:
        self.home = home
        self.dir = home / "actions" / "destructions"
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.audit = audit
        self.usage = usage
        self.recent_days = recent_days
        self.backups = backups or (lambda _uri: None)
        self.custodians = CustodianRegistry(home, audit)

    # -- storage ---------------------------------------------------------------------------------
    def _path(self, proposal_id: str) -> Path:
        if not proposal_id.replace("-", "").isalnum():
            raise DestructionRefused(f"no destruction proposal {proposal_id!r}")
        return self.dir / f"{proposal_id}.json"

    def load(self, proposal_id: str) -> dict[str, Any]:
        path = self._path(proposal_id)
        if not path.exists():
            raise DestructionRefused(f"no destruction proposal {proposal_id!r}")
        return json.loads(path.read_text())

    def _save(self, doc: dict[str, Any], step: str, actor: str, **extra: Any) -> dict[str, Any]:
        write_private(self._path(doc["id"]), json.dumps(doc, indent=2, sort_keys=True).encode())
        self.audit.append(
            {
                "operation": "destroy",
                "step": step,
                "outcome": step,  # proposed, approved, scheduled, destroyed, cancelled
                "approvals": len(doc["approvals"]),
                "operationId": doc["id"],
                "actor": actor,
                "system": doc["system"],
                "keyId": doc["keyId"],
                "status": doc["status"],
                **extra,
            }
        )
        return doc

    def proposals(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted(self.dir.glob("*.json"))]

    # -- steps -----------------------------------------------------------------------------------
    def propose(
        self,
        backend: KeyBackend,
        name: str,
        *,
        proposer: str,
        reason: str,
        pending: timedelta = timedelta(days=7),
        override_recent_use: str | None = None,
        backups_covered: str | None = None,
        keystore: str | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Record the intent after checking the key exists, has not been used recently, and that any
        backup or export of its material on record is accounted for (``backups_covered`` says how:
        destroyed with it, or why it may stay); the account goes into the certificate.

        ``keystore`` is the local keystore's directory, kept so the later steps reach the same one.
        """
        now = now or datetime.now(UTC)
        if not reason.strip():
            raise DestructionRefused("a reason is required")
        info = backend.describe(name)
        if info.status == "destroyed":
            raise DestructionRefused(f"{info.ref.uri} is already destroyed")
        since = now - timedelta(days=self.recent_days)
        uses, last_use = self.usage(info.ref.uri, since) or (None, None)
        if not override_recent_use:
            if uses is None:
                raise DestructionRefused(
                    "cannot confirm the key is unused: no audit warehouse answered; run the sink, or override "
                    "with a reason"
                )
            if uses:
                raise DestructionRefused(
                    f"{info.ref.uri} was used {uses} times in the last {self.recent_days} days (last "
                    f"{format_timestamp(last_use) if last_use else 'unknown'}); override with a reason"
                )
        copies = self.backups(info.ref.uri)
        if copies and not backups_covered:
            raise DestructionRefused(
                f"{len(copies)} backup(s)/export(s) of {info.ref.uri} are on record (latest {copies[-1]['time']} by "
                f"{copies[-1]['actor']}); destroy or account for them and say how (--backups-covered)"
            )
        doc = {
            "id": str(uuid.uuid4()),
            "keyId": info.ref.uri,
            "name": name,
            "system": str(backend.system),
            "versions": info.versions,
            "proposer": proposer,
            "reason": reason,
            "pendingSeconds": int(pending.total_seconds()),
            "proposedAt": format_timestamp(now),
            "usageCheck": {
                "days": self.recent_days,
                "uses": uses,
                "override": override_recent_use,
            },
            "backups": copies if copies is not None else "unknown: no audit warehouse answered",
            "backupsCovered": backups_covered,
            "approvals": [],
            "status": "awaiting-approval",
        }
        if keystore:
            doc["keystore"] = keystore
        return self._save(doc, "proposed", proposer, reason=reason, override=override_recent_use)

    def approve(
        self, proposal_id: str, custodian: str, *, signature: str | None = None, now: datetime | None = None
    ) -> dict[str, Any]:
        """Record one custodian's approval; with registered custodians, only a valid signature counts."""
        doc = self.load(proposal_id)
        if doc["status"] != "awaiting-approval":
            raise DestructionRefused(f"proposal is {doc['status']}, not awaiting approval")
        if custodian == doc["proposer"]:
            raise DestructionRefused("the proposer cannot approve their own destruction (dual control)")
        if custodian in {a["custodian"] for a in doc["approvals"]}:
            raise DestructionRefused(f"{custodian} has already approved; a different custodian must")
        approval = {"custodian": custodian, "at": format_timestamp(now or datetime.now(UTC))}
        if self.custodians.enforcing:
            try:
                if not signature:
                    raise CustodianRefused(f"custodians are registered: {custodian}'s approval must be signed")
                self.custodians.verify(Signed(custodian, signature), approval_statement(doc, custodian))
            except CustodianRefused as exc:  # audited: a probe or a forgery leaves a trace
                refusal = {"operation": "destroy", "outcome": "refused", "actor": custodian, "proposal": proposal_id}
                self.audit.append(refusal | {"reason": str(exc)})
                raise DestructionRefused(str(exc)) from None
            approval["signature"] = signature
        doc["approvals"].append(approval)
        if len(doc["approvals"]) >= REQUIRED_APPROVALS:
            doc["status"] = "approved"
        return self._save(doc, "approved", custodian, approvals=len(doc["approvals"]))

    def cancel(self, proposal_id: str, backend: KeyBackend | None, actor: str, reason: str) -> dict[str, Any]:
        """Withdraw a proposal; a provider-side schedule is cancelled too (the key stays disabled)."""
        doc = self.load(proposal_id)
        if doc["status"] in ("destroyed", "cancelled"):
            raise DestructionRefused(f"proposal is already {doc['status']}")
        if doc["status"] == "scheduled" and doc.get("providerSchedule") and backend is not None:
            backend.cancel_destroy(doc["name"])
        doc["status"] = "cancelled"
        return self._save(doc, "cancelled", actor, reason=reason)

    def execute(
        self, proposal_id: str, backend: KeyBackend, actor: str, *, now: datetime | None = None
    ) -> dict[str, Any]:
        """Disable, then schedule: the provider's pending window, or kmo's soak where there is none."""
        now = now or datetime.now(UTC)
        doc = self.load(proposal_id)
        if doc["status"] == "scheduled":
            return doc  # idempotent
        if doc["status"] != "approved":
            raise DestructionRefused(
                f"needs {REQUIRED_APPROVALS} custodian approvals first ({len(doc['approvals'])} so far)"
                if doc["status"] == "awaiting-approval"
                else f"proposal is {doc['status']}"
            )
        caps = backend.capabilities
        if Capability.DISABLE in caps:
            backend.disable(doc["name"])
        pending = timedelta(seconds=doc["pendingSeconds"])
        if Capability.SCHEDULE_DESTROY in caps:
            info = backend.schedule_destroy(doc["name"], pending)
            doc["providerSchedule"] = True
            doc["destroyAt"] = format_timestamp(info.destroy_at or now + pending)
        elif Capability.DESTROY in caps:
            doc["providerSchedule"] = False  # kmo's own soak: the key is untouched until then
            doc["destroyAt"] = format_timestamp(now + pending)
        else:
            raise DestructionRefused(f"{backend.system} can neither schedule nor perform destruction")
        doc["status"] = "scheduled"
        return self._save(doc, "scheduled", actor, destroyAt=doc["destroyAt"])

    def complete(
        self, proposal_id: str, backend: KeyBackend, actor: str, *, witness: str, now: datetime | None = None
    ) -> dict[str, Any]:
        """After the window: destroy or confirm destruction, verify it is gone, and certify it."""
        now = now or datetime.now(UTC)
        doc = self.load(proposal_id)
        if doc["status"] == "destroyed":
            return doc
        if doc["status"] != "scheduled":
            raise DestructionRefused(f"proposal is {doc['status']}, not scheduled")
        if now < parse_timestamp(doc["destroyAt"]):
            raise DestructionRefused(f"the pending window ends at {doc['destroyAt']}")
        if Capability.DESTROY in backend.capabilities:
            destroy = backend.destroy  # type: ignore[attr-defined]
            info: KeyInfo | None = destroy(doc["name"], now=now) if doc["providerSchedule"] else destroy(doc["name"])
            method = f"{doc['system']}: destroyed by kmo after its pending window"
        else:
            info = None
            method = f"{doc['system']}: destroyed by the provider at the end of its pending window"
        proof = self._proof(backend, doc["name"], info)
        if info is not None and info.versions:
            doc["versions"] = info.versions  # what was actually destroyed (a rotation during the soak adds one)
        doc.update(status="destroyed", destroyedAt=format_timestamp(now), method=method, providerProof=proof)
        doc["certificate"] = issue(
            signing_key(self.home),
            {
                "keyId": doc["keyId"],
                "versions": doc["versions"],
                "destroyedAt": doc["destroyedAt"],
                "method": method,
                "providerProof": proof,
                "backups": doc.get("backups"),
                "backupsCovered": doc.get("backupsCovered"),
                "approvals": doc["approvals"],
                "witness": witness,
            },
        )
        return self._save(doc, "destroyed", actor, witness=witness, certificate=doc["certificate"]["verificationHash"])

    @staticmethod
    def _proof(backend: KeyBackend, name: str, info: KeyInfo | None) -> str:
        """What the provider says now: the key is gone, or a tombstone with no material."""
        try:
            after = backend.describe(name)
        except KeyNotFound:
            return f"describe {name}: not found"
        if after.status != "destroyed":
            raise InvalidKeyState(str(backend.system), "destroy", name, f"still {after.status} after destruction")
        return f"describe {name}: status destroyed, versions {after.versions} hold no material"
