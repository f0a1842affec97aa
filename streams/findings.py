"""Findings: OCSF Detection Finding (class 2004) documents with deterministic uids.

A finding's uid is a hash of (rule id, dedup key, window start), the dedup key led by the state
bucket that holds the finding (streams.engine says why): the same evidence seen again (a
replay, a restart, a second worker after a rebalance) yields the same uid, so consumers upsert
instead of alerting twice. A finding grows as more matching events arrive in its window: ``count``,
``last_seen`` and the evidence list are updated and the finding is re-published under the same uid.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any

from ingest.schema import OCSF_VERSION, KeyEvent, format_timestamp, parse_timestamp
from ingest.schema.ocsf import EventClass, type_uid

MAX_EVIDENCE = 50  # event uids kept per finding; the count keeps counting beyond it


class Category(StrEnum):
    """``finding_info.types``: exactly one per finding."""

    ANOMALOUS_USAGE = "anomalous-usage"
    ORPHANED_KEY = "orphaned-key"
    POLICY_VIOLATION = "policy-violation"


class Severity(IntEnum):
    """OCSF severity_id."""

    INFORMATIONAL = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5


class Action(StrEnum):
    """What the actions module (and the responder) should do about a finding."""

    INVESTIGATE = "investigate"
    ROTATE = "rotate"
    DISABLE = "disable"
    CANCEL_DESTROY = "cancel-destroy"
    REVIEW_POLICY = "review-policy"
    RESTORE_LOGGING = "restore-logging"
    DECOMMISSION = "decommission"


class AnalyticType(IntEnum):
    """OCSF analytic.type_id."""

    RULE = 1
    STATISTICAL = 3
    LEARNING = 4


@dataclass
class Finding:
    """One detection finding; merged in place as more evidence arrives."""

    uid: str
    rule_id: str
    title: str
    category: Category
    severity: Severity
    action: Action
    analytic_type: AnalyticType
    message: str
    keys: list[str]
    actor: str | None
    first_seen: datetime
    last_seen: datetime
    count: int = 1
    evidence: list[str] = field(default_factory=list)
    attack: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def merge(self, other: Finding) -> None:
        """Fold a later match of the same finding into this one."""
        self.count += other.count
        self.first_seen = min(self.first_seen, other.first_seen)
        self.last_seen = max(self.last_seen, other.last_seen)
        for uid in other.evidence:
            if uid not in self.evidence and len(self.evidence) < MAX_EVIDENCE:
                self.evidence.append(uid)
        for key in other.keys:
            if key not in self.keys:
                self.keys.append(key)
        self.message = other.message  # the newest description of what is going on
        self.details.update(other.details)

    def to_ocsf(self) -> dict[str, Any]:
        cls = EventClass.DETECTION_FINDING
        activity = 1  # Create (an update re-publishes the same uid)
        return {
            "class_uid": int(cls),
            "category_uid": int(cls.category),
            "activity_id": activity,
            "type_uid": type_uid(int(cls), activity),
            "time": int(self.last_seen.timestamp() * 1000),
            "time_dt": format_timestamp(self.last_seen),
            "severity_id": int(self.severity),
            "status_id": 1,
            "message": self.message,
            "count": self.count,
            "metadata": {
                "version": OCSF_VERSION,
                "product": {"name": "kmo", "vendor_name": "kmo project"},
                "uid": self.uid,
            },
            "finding_info": {
                "uid": self.uid,
                "title": self.title,
                "types": [str(self.category)],
                "analytic": {"uid": self.rule_id, "name": self.title, "type_id": int(self.analytic_type)},
                "first_seen_time_dt": format_timestamp(self.first_seen),
                "last_seen_time_dt": format_timestamp(self.last_seen),
                "related_events": [{"uid": u} for u in self.evidence],
                "attacks": [{"technique": {"uid": t}} for t in self.attack],
            },
            "resources": [{"type": "crypto_key", "uid": k} for k in self.keys],
            "actor": {"user": {"uid": self.actor}} if self.actor else {},
            "remediation": {"desc": str(self.action)},
            "unmapped": {"recommended_action": str(self.action), "details": self.details},
        }

    @classmethod
    def from_ocsf(cls, doc: dict[str, Any]) -> Finding:
        info = doc["finding_info"]
        return cls(
            uid=info["uid"],
            rule_id=info["analytic"]["uid"],
            title=info["title"],
            category=Category(info["types"][0]),
            severity=Severity(doc["severity_id"]),
            action=Action(doc["unmapped"]["recommended_action"]),
            analytic_type=AnalyticType(info["analytic"]["type_id"]),
            message=doc["message"],
            keys=[r["uid"] for r in doc.get("resources", [])],
            actor=(doc.get("actor") or {}).get("user", {}).get("uid"),
            first_seen=parse_timestamp(info["first_seen_time_dt"]),
            last_seen=parse_timestamp(info["last_seen_time_dt"]),
            count=doc["count"],
            evidence=[e["uid"] for e in info.get("related_events", [])],
            attack=tuple(a["technique"]["uid"] for a in info.get("attacks", [])),
            details=doc["unmapped"].get("details", {}),
        )


def finding_uid(rule_id: str, dedup_key: str, window_start: datetime | None) -> str:
    stamp = window_start.astimezone(UTC).isoformat() if window_start else "-"
    return "kmo-finding:" + hashlib.sha256(f"{rule_id}|{dedup_key}|{stamp}".encode()).hexdigest()[:32]


def window_start(time: datetime, seconds: int) -> datetime:
    """The start of the fixed window of ``seconds`` containing ``time`` (event time, not arrival)."""
    epoch = int(time.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def event_keys(event: KeyEvent) -> list[str]:
    keys = [event.key.uri] if event.key else []
    keys.extend(k.uri for k in event.related_keys)
    return keys
