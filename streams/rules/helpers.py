"""Small predicates and state helpers rules share (so each rule file stays a few lines)."""

from __future__ import annotations

import json
from typing import Any

from ingest.schema import KeyEvent, Provider
from streams.findings import window_start
from streams.rules.base import Context, StateStore

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


def azure_operation(event: KeyEvent) -> str:
    """A Key Vault record's operation as rules compare it: AuditEvent names as logged
    (``KeyPurge``), Activity Log RBAC actions lower-cased (their case varies between exports)."""
    return event.operation.lower() if "/" in event.operation else event.operation


# The domain of GCP's per-project Cloud Storage service agents (service-<n>@gs-project-accounts...),
# which call Cloud KMS for buckets that use a customer-managed key.
GCS_SERVICE_AGENT_DOMAIN = "gs-project-accounts.iam.gserviceaccount.com"


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
    ctx: Context, name: str, event: KeyEvent, seconds: int, member: str | None = None, *, held: int | None = None
) -> tuple[int, int]:
    """Count ``event`` into its own event-time window of series ``name``; return that window's
    (count, distinct members, remembered up to MAX_WINDOW_MEMBERS).

    Events reach a rule out of time order: a principal's events are merged from every key
    partition, which the worker reads record-fair, not time-fair, so while it works through a
    backlog a partition carrying more events per hour falls behind the others in event time (39
    days at a million events in the benchmark); sources also deliver minutes or hours apart.
    Counting a late event into the newest window, as this once did, made bursts out of events days
    or months apart, which replay over the same files never raised (238 of them at ten million
    events, bench/README.md). So a series keeps its ``held`` (default WINDOWS_HELD) latest windows
    that had events, and a late event counts into its own: a window's count then does not depend
    on the order of arrival, and the stream and replay agree. Held by count, not by age: the series
    these rules keep (errors, secret reads, failed logins) are sparse, so 128 windows reach back
    months, in bounded state. An event whose window was let go counts alone (never into another
    window: at worst a burst is missed, none is made up) and is tallied in ``ctx.late``, which the
    worker reports.
    """
    held = WINDOWS_HELD if held is None else held
    start = int(window_start(event.time, seconds).timestamp())
    state = ctx.state.get(name) or {}
    windows, floor = _windows(state), int(state.get("floor", -1))
    newest = max(start, max(windows, default=start))
    if start < newest:
        ctx.late.behind += 1
        ctx.late.max_seconds = max(ctx.late.max_seconds, newest - start)
    if start <= floor:  # its window was let go: this event cannot be counted with its neighbours
        ctx.late.uncounted += 1
        return 1, int(member is not None)
    count, members = windows.get(start, (0, []))
    if member is not None and member not in members and len(members) < MAX_WINDOW_MEMBERS:
        members = [*members, member]
    windows[start] = (count + 1, members)
    kept = sorted(windows.items())
    if len(kept) > held:
        floor = max(floor, kept[-held - 1][0])
        kept = kept[-held:]
    ctx.state[name] = {"windows": [[w, n, m] for w, (n, m) in kept], "floor": floor}
    return count + 1, len(members)


WINDOWS_HELD = 128  # windows with events a series keeps (window_count says why)
MAX_WINDOW_MEMBERS = 100  # distinct members remembered per window (every threshold is far below)


def _windows(state: dict[str, Any]) -> dict[int, tuple[int, list[str]]]:
    """A series' windows by start. Reads the one-window form an older worker left in its table
    (``{"w", "n", "m"}``), so an upgrade loses no count."""
    if "windows" in state:
        return {int(w): (int(n), list(m)) for w, n, m in state["windows"]}
    if "w" in state:
        return {int(state["w"]): (int(state["n"]), list(state["m"]))}
    return {}


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
