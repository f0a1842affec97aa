"""Grant on a key to a principal in another account.

Grants are a second, quieter way to give key access than the key policy, and they do not show in
``GetKeyPolicy``. A grant to an account outside the key's own (and outside the allowed list) is a
persistence and exfiltration channel.
"""

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import key_account, principal

RULE = Rule(
    id="aws_kms.grant_to_outside_account",
    title="KMS grant to a principal in another account",
    severity=Severity.HIGH,
    category=Category.POLICY_VIOLATION,
    action=Action.REVIEW_POLICY,
    ops=frozenset({KeyOp.GRANT}),
    attack=("T1098",),
    runbook="1. Confirm the grantee account belongs to the organisation. 2. If not: RevokeGrant, then review "
    "use of the key by that account.",
    false_positives="Cross-account sharing with a partner listed in allowed_accounts (does not fire).",
    covers=("gap:grant-to-outside-principal",),
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    grantee = event.details.get("grantee_principal")
    if not event.success or not isinstance(grantee, str) or not grantee.startswith("arn:"):
        return None
    parts = grantee.split(":")
    account = parts[4] if len(parts) > 4 else ""
    own = key_account(event)
    if not account or account == own or account in ctx.policy.allowed_accounts:
        return None
    key = event.key.uri if event.key else "-"
    return Hit(
        dedup=f"{key}|{grantee}",
        message=f"{principal(event)} granted {grantee} use of {key}",
        details={"grantee": grantee, "grantee_account": account},
    )


CASES = (
    Case(
        "grant to another account",
        (
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {"eventName": "CreateGrant", "requestParameters.granteePrincipal": "arn:aws:iam::999988887777:role/x"},
            ),
        ),
        True,
    ),
    Case(
        "grant inside the account",
        (
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {"eventName": "CreateGrant", "requestParameters.granteePrincipal": "arn:aws:iam::111122223333:role/x"},
            ),
        ),
        False,
    ),
)
