"""Small predicates and state helpers rules share (so each rule file stays a few lines)."""

from __future__ import annotations

import json
from typing import Any

from ingest.schema import KeyEvent, Provider
from streams.findings import window_start
from streams.rules.base import StateStore

SERVICE_TYPES = frozenset({"AWSService", "AWSAccount"})


def principal(event: KeyEvent) -> str:
    return event.actor.principal or "unknown"


def is_service(event: KeyEvent) -> bool:
    """A provider acting on its own (automatic rotation, DeleteKey at the end of the window)."""
    return event.actor.principal_type in SERVICE_TYPES or event.actor.principal == "AWS Internal"


def is_human(event: KeyEvent) -> bool:
    """People, as far as the log tells: IAM users and SSO/console sessions, GCP user accounts,
    Azure UPNs. Service accounts, roles assumed by workloads and tokens are not."""
    kind = event.actor.principal_type
    if kind in ("IAMUser", "User", "Root"):
        return True
    return bool(kind == "AssumedRole" and event.actor.principal and "AWSReservedSSO" in event.actor.principal)


def approved(event: KeyEvent, policy: Any) -> bool:
    """Done through the approved path (kmo's orchestrator or another listed principal)."""
    return bool(event.actor.principal and event.actor.principal in policy.approved_principals)


def key_account(event: KeyEvent) -> str | None:
    if event.key is None:
        return event.account
    if event.provider is Provider.AWS_KMS:
        return event.key.uri.split(":")[4]
    if event.provider is Provider.GCP_KMS:
        return event.key.uri.split("/")[1]
    return event.account


def window_count(
    store: StateStore, name: str, event: KeyEvent, seconds: int, member: str | None = None
) -> tuple[int, int]:
    """Count ``event`` into the current event-time window of ``name``; return (count, distinct members).

    One state entry per name (the window it counts, its count, its members): a new window replaces
    the old one, so state stays bounded however long the stream runs. An event older than the
    current window counts into the current one rather than resurrecting a finished window.
    """
    start = int(window_start(event.time, seconds).timestamp())
    state = store.get(name)
    if state is None or start > state["w"]:
        state = {"w": start, "n": 0, "m": []}
    state = {"w": state["w"], "n": state["n"] + 1, "m": list(state["m"])}
    if member is not None and member not in state["m"] and len(state["m"]) < 1000:
        state["m"].append(member)
    store[name] = state
    return state["n"], len(state["m"])


def learn(store: StateStore, name: str, member: str, event: KeyEvent, cap: int = 200) -> tuple[bool, int, float]:
    """Remember ``member`` in the learned set ``name``; return (was it known, events seen before this
    one, event time of the first). First-seen rules fire on an unknown member only once the set is
    established: enough history, over enough (event) time."""
    state = store.get(name) or {"first": event.time.timestamp(), "members": [], "n": 0}
    known = member in state["members"]
    members = state["members"] if known or len(state["members"]) >= cap else [*state["members"], member]
    store[name] = {"first": min(state["first"], event.time.timestamp()), "members": members, "n": state["n"] + 1}
    return known, state["n"], state["first"]


def policy_doc(event: KeyEvent) -> dict[str, Any] | None:
    raw = event.details.get("policy")
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            doc = json.loads(raw)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None
    return None
