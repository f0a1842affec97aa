"""Every Kafka topic kmo uses: one place that names them and says how many partitions each has.

Events go to the partition of their canonical key uri, so one key's events stay in order on one
partition and per-key state in the stream workers lives on one worker. Topic names carry a version: a breaking
change to a message format means a new ``.v2`` topic, never a silent change to ``.v1``.
"""

from __future__ import annotations

from dataclasses import dataclass

from kmo.settings import Settings


@dataclass(frozen=True, slots=True)
class Topic:
    """A topic name (with the configured prefix) and its partition count."""

    name: str
    partitions: int
    config: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics of one kmo deployment."""

    events: Topic  # normalised KeyEvents (OCSF JSON lines, several a message: ingest.schema.batch)
    dlq: Topic  # records that could not be parsed or decoded: raw bytes + reason headers
    findings: Topic  # detection findings (OCSF 2004), later issues
    actions: Topic  # what the orchestrator did (OCSF 3004), later issues
    coverage: Topic  # collector heartbeats: what was read, lag, last event time
    inventory: Topic  # key inventory snapshots (keyInfo per key), key = key uri
    reports: Topic  # announcements of scheduled jobs: reports written, checks run

    @classmethod
    def for_settings(cls, settings: Settings) -> Topics:
        p = settings.topic_prefix
        # Dead letters are evidence: keep them until someone decides otherwise.
        keep = (("retention.ms", "-1"),)
        return cls(
            # v2: a message holds one or more events (v1 held one; ingest.schema.batch)
            events=Topic(f"{p}kmo.events.v2", settings.events_partitions),
            dlq=Topic(f"{p}kmo.dlq.v1", 1, keep),
            findings=Topic(f"{p}kmo.findings.v1", settings.events_partitions),
            actions=Topic(f"{p}kmo.actions.v1", 1, keep),
            coverage=Topic(f"{p}kmo.coverage.v1", 1),
            inventory=Topic(f"{p}kmo.inventory.v1", 1),
            reports=Topic(f"{p}kmo.reports.v1", 1),
        )

    def all(self) -> tuple[Topic, ...]:
        return (self.events, self.dlq, self.findings, self.actions, self.coverage, self.inventory, self.reports)
