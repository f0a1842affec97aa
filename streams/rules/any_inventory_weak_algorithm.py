"""Inventory keys whose algorithm or size the policy disallows (NIST SP 800-131A: RSA below 2048,
3DES, SHA-1 signatures)."""

from datetime import datetime

from streams.findings import Action, Category, Severity
from streams.rules.any_disallowed_algorithm import weak
from streams.rules.base import Case, Context, Hit, Rule

RULE = Rule(
    id="any.inventory_weak_algorithm",
    title="Key with a disallowed algorithm or size",
    severity=Severity.HIGH,
    category=Category.POLICY_VIOLATION,
    action=Action.DECOMMISSION,
    ops=None,
    scope="absence",
    runbook="Plan the migration to a compliant key; record an exception until then.",
    false_positives="Documented legacy exceptions.",
    covers=("gap:disallowed-algorithm",),
    dedup_seconds=7 * 86400,
)


def check(now: datetime, ctx: Context) -> list[tuple[Hit, datetime]]:
    out = []
    for k in ctx.inventory.keys.values():
        spec = f"{k.algorithm or ''}"
        if k.algorithm and k.algorithm.upper().startswith("RSA") and k.key_size:
            spec = f"RSA-{k.key_size}"
        if spec and k.status != "destroyed" and weak(spec, ctx.policy):
            out.append(
                (Hit(dedup=k.uri, message=f"{k.uri} uses {spec}", keys=[k.uri], details={"algorithm": spec}), now)
            )
    return out


CASES = (
    Case(
        "RSA-1024",
        (),
        True,
        now="2026-12-01T00:00:00Z",
        inventory=(
            {
                "keyId": "transit/keys/a",
                "keyManagementSystem": "vault",
                "algorithm": "RSA-1024",
                "keySize": 1024,
                "owner": "t",
            },
        ),
    ),
    Case(
        "RSA-4096",
        (),
        False,
        now="2026-12-01T00:00:00Z",
        inventory=(
            {
                "keyId": "transit/keys/a",
                "keyManagementSystem": "vault",
                "algorithm": "RSA-4096",
                "keySize": 4096,
                "owner": "t",
            },
        ),
    ),
)
