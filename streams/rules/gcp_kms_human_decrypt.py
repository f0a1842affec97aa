"""A person (not a service account) decrypted with a Cloud KMS key.

Production decryption is done by workloads; a human calling Decrypt is reading protected data by
hand (Google's exposure-notifications HumanDecryptedValue alert).
"""

from ingest.schema import KeyEvent, KeyOp, Provider
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import principal

RULE = Rule(
    id="gcp_kms.human_decrypt",
    title="Decrypt by a human account",
    severity=Severity.MEDIUM,
    category=Category.ANOMALOUS_USAGE,
    action=Action.INVESTIGATE,
    ops=frozenset({KeyOp.DECRYPT}),
    attack=("T1530",),
    runbook="Ask the person why; if it was not break-glass, revoke their decrypt permission on the key.",
    false_positives="Documented break-glass reads.",
    covers=("#39", "#41"),
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if event.provider is not Provider.GCP_KMS or not event.success or event.actor.principal_type != "User":
        return None
    key = event.key.uri if event.key else "-"
    return Hit(dedup=f"{key}|{principal(event)}", message=f"{principal(event)} decrypted with {key}")


CASES = (
    Case(
        "user decrypts",
        (step("gcp/kms_entries.ndjson#0", {"protoPayload.authenticationInfo.principalEmail": "eve@example.com"}),),
        True,
    ),
    Case("service account decrypts", (step("gcp/kms_entries.ndjson#0"),), False),
)
