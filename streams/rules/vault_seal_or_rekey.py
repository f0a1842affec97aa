"""Vault's own keys touched: sealed, rekeyed, a root token generated from key shares, or the barrier
key rotated, outside the approved path.

These calls act on the keys that protect Vault itself. A seal stops every client at once (an outage
anyone holding the permission can cause); a rekey replaces the unseal or recovery key shares, and
whoever holds the new shares controls the cluster; generate-root mints a root token from shares,
bypassing every policy; a barrier rotation is routine but should be planned. No public rule set
watches Vault's audit log for them (gap 12 in ../shared/design/detections.md).
"""

from ingest.schema import KeyEvent, KeyOp, Provider
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import approved, principal

RULE = Rule(
    id="vault.seal_or_rekey",
    title="Vault sealed, rekeyed, root generated or barrier key rotated",
    severity=Severity.HIGH,
    category=Category.POLICY_VIOLATION,
    action=Action.INVESTIGATE,
    ops=frozenset({KeyOp.CONFIG_CHANGE}),
    attack=("T1098", "T1489"),
    runbook="1. Confirm a change ticket and the key-share holders present. 2. For generate-root, find "
    "and revoke the token it produced. 3. For an unplanned rekey, rekey again with the rightful holders.",
    false_positives="Planned key ceremonies and barrier rotations (list the operator in approved_principals).",
    covers=("gap:vault-seal-rekey-root",),
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    control = event.details.get("vault_control")
    if event.provider is not Provider.VAULT or control is None or not event.success:
        return None
    # unsealing is how a cluster comes back; a step-down only moves the active node
    if control in ("unseal", "step-down") or approved(event, ctx.policy):
        return None
    return Hit(
        dedup=f"{event.account or '-'}|{control}",
        message=f"{principal(event)} {control} ({event.operation})",
        keys=[],
    )


def _sys(path: str, operation: str = "update") -> dict[str, str]:
    return {
        "request.path": path,
        "request.mount_type": "system",
        "request.mount_point": "sys/",
        "request.operation": operation,
    }


CASES = (
    Case(
        "root token generated from key shares",
        (step("vault/transit_session.log#1", _sys("sys/generate-root/attempt")),),
        True,
    ),
    Case("sealed", (step("vault/transit_session.log#1", _sys("sys/seal")),), True),
    Case("barrier key rotated", (step("vault/transit_session.log#1", _sys("sys/rotate")),), True),
    Case("seal status read", (step("vault/transit_session.log#1", _sys("sys/seal-status", "read")),), False),
    Case("seal-wrap rewrap is not a seal", (step("vault/transit_session.log#1", _sys("sys/sealwrap/rewrap")),), False),
    Case("unsealed", (step("vault/transit_session.log#1", _sys("sys/unseal")),), False),
    Case("active node stepped down", (step("vault/transit_session.log#1", _sys("sys/step-down")),), False),
)
