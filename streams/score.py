"""How good are the detections? Recall on labelled incidents and false positives per 100k benign events.

An incident is caught when some finding's evidence contains one of its events (for an incident with
no events, such as an orphaned key, when a finding of the expected kind names its key). A false
positive is an event-based finding none of whose evidence belongs to an incident. Absence findings
(inventory hygiene: rotation overdue, ownerless keys) have no evidence events and are counted apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.findings import Finding

# incident kinds with no events: which rule should find them
ABSENCE_KINDS = {"orphaned_key": "any.orphaned_key"}


@dataclass
class Score:
    incidents: int
    caught: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    false_positives: list[Finding] = field(default_factory=list)
    benign_events: int = 0
    absence_findings: int = 0
    by_incident: dict[str, list[str]] = field(default_factory=dict)  # incident id -> rule ids that caught it

    @property
    def recall(self) -> float:
        return len(self.caught) / self.incidents if self.incidents else 1.0

    @property
    def fp_per_100k(self) -> float:
        return 100_000 * len(self.false_positives) / self.benign_events if self.benign_events else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "incidents": self.incidents,
            "caught": len(self.caught),
            "recall": round(self.recall, 4),
            "missed": self.missed,
            "false_positives": len(self.false_positives),
            "benign_events": self.benign_events,
            "false_positives_per_100k_benign": round(self.fp_per_100k, 3),
            "absence_findings": self.absence_findings,
            "caught_by": self.by_incident,
        }


def score(findings: list[Finding], incidents: list[dict[str, Any]], total_events: int) -> Score:
    incident_events: dict[str, str] = {u: inc["id"] for inc in incidents for u in inc["event_uids"]}
    result = Score(incidents=len(incidents), benign_events=total_events - len(incident_events))
    hit_by: dict[str, set[str]] = {}
    for finding in findings:
        if not finding.evidence:
            result.absence_findings += 1
            for inc in incidents:
                rule = ABSENCE_KINDS.get(inc["kind"])
                if rule == finding.rule_id and set(inc["keys"]) & set(finding.keys):
                    hit_by.setdefault(inc["id"], set()).add(finding.rule_id)
            continue
        owners = {incident_events[u] for u in finding.evidence if u in incident_events}
        if not owners:
            result.false_positives.append(finding)
        for owner in owners:
            hit_by.setdefault(owner, set()).add(finding.rule_id)
    for inc in incidents:
        (result.caught if inc["id"] in hit_by else result.missed).append(inc["id"])
    result.by_incident = {k: sorted(v) for k, v in sorted(hit_by.items())}
    return result
