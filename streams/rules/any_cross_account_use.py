"""Key used by a principal from another account or project than the key's.

Cross-account use is how stolen or over-shared keys are used from outside; GCP's cross-project
Encrypt with an attacker's key is the storage-ransomware pattern (Panther GCP.KMS.CrossProjectEncryption).
"""

from ingest.schema import USAGE_OPS, KeyEvent, Provider
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import is_service, key_account, principal

RULE = Rule(
    id="any.cross_account_use",
    title="Key used from another account or project",
    severity=Severity.HIGH,
    category=Category.ANOMALOUS_USAGE,
    action=Action.INVESTIGATE,
    ops=USAGE_OPS,
    attack=("T1486", "T1530"),
    runbook="1. Identify the calling account and whether it belongs to the organisation. 2. If not: remove "
    "the grant or policy statement that allows it and rotate the key.",
    false_positives="Shared keys used by a central logging or backup account (list it in allowed_accounts).",
    covers=("#7", "#11", "#25"),
)


# Where "the caller's account" and "the key's account" are the same kind of thing: AWS account ids,
# GCP projects. (Azure tenants and subscriptions, Vault namespaces, HSM partitions are not comparable.)
_COMPARABLE = frozenset({Provider.AWS_KMS, Provider.GCP_KMS})


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if not event.success or event.key is None or is_service(event) or event.provider not in _COMPARABLE:
        return None
    own = key_account(event)
    caller = event.actor.account
    other = event.details.get("resource_project")  # GCP: the caller's project differs from the key's
    outsider = other if isinstance(other, str) else (caller if caller and own and caller != own else None)
    if outsider is None or outsider == own or outsider in ctx.policy.allowed_accounts:
        return None
    return Hit(
        dedup=f"{event.key.uri}|{outsider}",
        message=f"{principal(event)} from {outsider} used {event.key.uri} (owned by {own})",
        details={"caller_account": outsider, "key_account": own},
    )


CASES = (
    Case(
        "role in another account decrypts",
        (step("cloudtrail/decrypt_assumed_role.json", {"userIdentity.accountId": "999988887777"}),),
        True,
    ),
    Case("same account", (step("cloudtrail/decrypt_assumed_role.json"),), False),
)
