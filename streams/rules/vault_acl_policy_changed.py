"""Vault ACL policy written or deleted.

Vault policies decide who may use which transit key; editing one is a change of access to keys
that bypasses the keys' own configuration and leaves no trace on them.
"""

from ingest.schema import KeyEvent, KeyOp, Provider
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import approved, principal

RULE = Rule(
    id="vault.acl_policy_changed",
    title="Vault ACL policy changed",
    severity=Severity.MEDIUM,
    category=Category.POLICY_VIOLATION,
    action=Action.REVIEW_POLICY,
    ops=frozenset({KeyOp.POLICY_CHANGE}),
    attack=("T1098",),
    runbook="Diff the policy against version control; revert unreviewed changes.",
    false_positives="Policy changes applied by the team's CI (list its principal in approved_principals).",
    covers=("gap:vault-acl-policy",),
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    path = str(event.details.get("vault_path", ""))
    if (
        event.provider is not Provider.VAULT
        or not event.success
        or not path.startswith("sys/polic")
        or approved(event, ctx.policy)
    ):
        return None
    return Hit(dedup=path, message=f"{principal(event)} {event.details.get('vault_operation')} {path}")


CASES = (
    Case(
        "policy written",
        (
            step(
                "vault/transit_session.log#1",
                {"request.path": "sys/policies/acl/payments", "request.mount_type": "system"},
            ),
        ),
        True,
    ),
    Case(
        "policy read",
        (
            step(
                "vault/transit_session.log#1",
                {
                    "request.path": "sys/policies/acl/payments",
                    "request.mount_type": "system",
                    "request.operation": "read",
                },
            ),
        ),
        False,
    ),
)
