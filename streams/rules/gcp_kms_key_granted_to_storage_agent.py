"""Cloud KMS encrypter/decrypter role granted to a Cloud Storage service agent.

The first step of GCS ransomware with an attacker-controlled key: the victim's storage agent is
allowed to use the attacker's key, then buckets are rewritten under it (Panther GCP.KMS.EnableKey).
"""

from ingest.schema import KeyEvent, KeyOp, Provider
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import GCS_SERVICE_AGENT_DOMAIN, policy_doc, principal

RULE = Rule(
    id="gcp_kms.key_granted_to_storage_agent",
    title="Key use granted to a Cloud Storage service agent",
    severity=Severity.MEDIUM,
    category=Category.POLICY_VIOLATION,
    action=Action.REVIEW_POLICY,
    ops=frozenset({KeyOp.POLICY_CHANGE}),
    attack=("T1486",),
    runbook="Confirm the bucket and key belong together (CMEK set-up); if the key is in another project, remove the binding.",
    false_positives="Setting up CMEK for a bucket in the same project.",
    covers=("#10", "#12"),
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    doc = policy_doc(event)
    if event.provider is not Provider.GCP_KMS or not event.success or doc is None:
        return None
    for binding in doc.get("bindings") or []:
        role = str(binding.get("role", "")).lower() if isinstance(binding, dict) else ""
        members = binding.get("members") if isinstance(binding, dict) else None
        if "cryptokey" in role and ("encrypt" in role or "decrypt" in role) and isinstance(members, list):
            agents = [m for m in members if isinstance(m, str) and GCS_SERVICE_AGENT_DOMAIN in m]
            if agents:
                key = event.key.uri if event.key else "-"
                return Hit(
                    dedup=f"{key}|{agents[0]}",
                    message=f"{principal(event)} let {agents[0]} use {key}",
                    details={"members": agents},
                )
    return None


_BINDING = {
    "policy": {
        "bindings": [
            {
                "role": "roles/cloudkms.cryptoKeyEncrypterDecrypter",
                "members": ["serviceAccount:service-1@gs-project-accounts.iam.gserviceaccount.com"],
            }
        ]
    }
}
_OTHER = {
    "policy": {
        "bindings": [
            {
                "role": "roles/cloudkms.cryptoKeyEncrypterDecrypter",
                "members": ["serviceAccount:app@p.iam.gserviceaccount.com"],
            }
        ]
    }
}
CASES = (
    Case(
        "storage agent granted",
        (
            step(
                "gcp/kms_entries.ndjson#0",
                {"protoPayload.methodName": "SetIamPolicy", "protoPayload.request": _BINDING},
            ),
        ),
        True,
    ),
    Case(
        "application account granted",
        (
            step(
                "gcp/kms_entries.ndjson#0", {"protoPayload.methodName": "SetIamPolicy", "protoPayload.request": _OTHER}
            ),
        ),
        False,
    ),
)
