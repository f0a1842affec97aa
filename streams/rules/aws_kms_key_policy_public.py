"""Key policy opened to everyone or to an unconditioned wildcard.

A statement that allows ``Principal: "*"`` (or ``{"AWS": "*"}``) without a condition lets any AWS
account use the key: data encrypted under it is readable by anyone who obtains the ciphertext, and
an attacker can encrypt victims' data with it (ransomware with a victim-trusted key).
"""

from typing import Any

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import key_account, policy_doc, principal

RULE = Rule(
    id="aws_kms.key_policy_public",
    title="KMS key policy allows everyone or an outside account",
    severity=Severity.HIGH,
    category=Category.POLICY_VIOLATION,
    action=Action.REVIEW_POLICY,
    ops=frozenset({KeyOp.POLICY_CHANGE, KeyOp.CREATE}),
    attack=("T1098", "T1486"),
    runbook="1. Restore the previous key policy. 2. Look for use of the key from accounts outside the "
    "organisation since the change (cross-account findings).",
    false_positives="A wildcard principal narrowed by conditions (aws:PrincipalOrgID): those do not fire.",
    covers=("#8", "#21", "#31", "#40"),
)


def _wildcard(principal_field: Any) -> bool:
    if principal_field == "*":
        return True
    if isinstance(principal_field, dict):
        aws = principal_field.get("AWS")
        return aws == "*" or (isinstance(aws, list) and "*" in aws)
    return False


def _outside(principal_field: Any, own: str | None, allowed: tuple[str, ...]) -> list[str]:
    """Account ids named in a statement's principal that are neither the key's nor allowed."""
    aws = principal_field.get("AWS") if isinstance(principal_field, dict) else None
    names = aws if isinstance(aws, list) else [aws]
    accounts = []
    for name in names:
        if isinstance(name, str):
            acct = (
                name
                if name.isdigit()
                else (name.split(":")[4] if name.startswith("arn:") and name.count(":") >= 5 else "")
            )
            if acct and acct != own and acct not in allowed:
                accounts.append(acct)
    return accounts


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    doc = policy_doc(event)
    if not event.success or doc is None:
        return None
    statements = doc.get("Statement")
    statements = statements if isinstance(statements, list) else [statements]
    open_statements = [
        s.get("Sid", str(i))
        for i, s in enumerate(statements)
        if isinstance(s, dict)
        and s.get("Effect") == "Allow"
        and _wildcard(s.get("Principal"))
        and not s.get("Condition")
    ]
    own = key_account(event)
    outside = sorted(
        {
            account
            for s in statements
            if isinstance(s, dict) and s.get("Effect") == "Allow"
            for account in _outside(s.get("Principal"), own, ctx.policy.allowed_accounts)
        }
    )
    if not open_statements and not outside:
        return None
    key = event.key.uri if event.key else "-"
    who = "everyone" if open_statements else f"account(s) {', '.join(outside)}"
    return Hit(
        dedup=key,
        message=f"{principal(event)} set a key policy on {key} that allows {who}",
        details={"statements": open_statements, "outside_accounts": outside},
    )


_PUBLIC = '{"Version":"2012-10-17","Statement":[{"Sid":"Open","Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}]}'
_ORG = '{"Version":"2012-10-17","Statement":[{"Sid":"Org","Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abc"}}}]}'
CASES = (
    Case(
        "PutKeyPolicy to everyone",
        (
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {"eventName": "PutKeyPolicy", "requestParameters.policy": _PUBLIC},
            ),
        ),
        True,
    ),
    Case(
        "wildcard limited to the organisation",
        (
            step(
                "cloudtrail/decrypt_assumed_role.json", {"eventName": "PutKeyPolicy", "requestParameters.policy": _ORG}
            ),
        ),
        False,
    ),
    Case(
        "policy naming another account",
        (
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {
                    "eventName": "PutKeyPolicy",
                    "requestParameters.policy": '{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999988887777:root"},"Action":"kms:Decrypt"}]}',
                },
            ),
        ),
        True,
    ),
)
