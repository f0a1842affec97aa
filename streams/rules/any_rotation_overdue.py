"""Inventory keys overdue for rotation for their key type (the specification's cryptoperiods)."""

from datetime import datetime, timedelta

from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step

RULE = Rule(
    id="any.rotation_overdue",
    title="Key rotation overdue",
    severity=Severity.MEDIUM,
    category=Category.POLICY_VIOLATION,
    action=Action.ROTATE,
    ops=None,
    scope="absence",
    runbook="Rotate the key (kmo rotate); enable automatic rotation with the type's period.",
    false_positives="Keys whose rotation is tracked elsewhere (set lastRotatedAt in the inventory).",
    covers=("#20", "gap:rotation-overdue"),
    dedup_seconds=7 * 86400,
)


def check(now: datetime, ctx: Context) -> list[tuple[Hit, datetime]]:
    out = []
    for key in ctx.inventory.keys.values():
        period = ctx.policy.rotation_days.get(key.key_type or "")
        if period is None or key.status in ("destroyed", "pending-destruction", "inactive"):
            continue
        seen = ctx.state.get(f"last-rotate|{key.uri}")
        candidates = [t for t in (key.last_rotated_at, key.created_at) if t is not None]
        if seen:
            candidates.append(datetime.fromtimestamp(seen, tz=now.tzinfo))
        if not candidates:
            continue
        last = max(candidates)
        due = last + timedelta(days=period)
        if now <= due:
            continue
        out.append(
            (
                Hit(
                    dedup=key.uri,
                    message=f"{key.uri} ({key.key_type}) last rotated {last:%Y-%m-%d}, "
                    f"due {due:%Y-%m-%d} ({period}-day period)",
                    keys=[key.uri],
                    details={"last_rotated": last.isoformat(), "due": due.isoformat()},
                ),
                now,
            )
        )
    return out


_DATA = (
    {
        "keyId": "transit/keys/payments",
        "keyManagementSystem": "vault",
        "keyType": "data",
        "createdAt": "2026-01-01T00:00:00Z",
        "lastRotatedAt": "2026-09-01T00:00:00Z",
        "owner": "team-a",
    },
)
CASES = (
    Case("data key rotated 3 months ago", (), True, inventory=_DATA, now="2026-12-01T00:00:00Z"),
    Case(
        "rotated by Vault last week",
        (
            step(
                "vault/transit_session.log#1",
                {"request.path": "transit/keys/payments/rotate", "time": "2026-11-25T00:00:00Z"},
            ),
        ),
        False,
        inventory=_DATA,
        now="2026-12-01T00:00:00Z",
    ),
)
