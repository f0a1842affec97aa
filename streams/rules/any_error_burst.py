"""A burst of failed calls by one principal across several keys (access-denied probing).

One principal failing against many keys in minutes is enumeration with stolen credentials, or a
misconfigured deployment; both deserve a look.
"""

from ingest.schema import KeyEvent
from streams.findings import Action, AnalyticType, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import principal, window_count

RULE = Rule(
    id="any.error_burst",
    title="Burst of failed key operations by one principal",
    severity=Severity.HIGH,
    category=Category.ANOMALOUS_USAGE,
    action=Action.INVESTIGATE,
    ops=None,
    scope="principal",
    attack=("T1110", "T1580"),
    runbook="1. Which keys, and which errors? 2. If access denied across unrelated keys: the credentials are "
    "being used to explore; revoke them.",
    false_positives="A deployment rolled out with wrong permissions (many errors, few keys).",
    covers=("#30", "gap:error-burst"),
    analytic=AnalyticType.STATISTICAL,
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if event.success or event.error_code == "NoResponseLogged":
        return None
    cfg = ctx.policy.error_burst
    # what was tried: the key, or for key-less calls (Vault KV and sys paths) the path, so a token
    # walking paths it may not read counts like a principal walking keys
    d = event.details
    key = event.key.uri if event.key else str(d.get("secret_path") or d.get("vault_path") or "-")
    count, keys = window_count(ctx, f"errors|{principal(event)}", event, cfg["window_seconds"], key)
    if count < cfg["min_errors"] or keys < cfg["min_keys"]:
        return None
    return Hit(
        dedup=principal(event),
        message=f"{principal(event)} failed {count} times on {keys} keys or paths",
        details={"errors": count, "keys": keys},
        keys=[],
    )


CASES = (
    Case(
        "a Vault token denied on twelve secret paths",
        (
            step(
                "vault/transit_session.log#1",
                {
                    "request.id": "r{i}",
                    "request.path": "secret/data/team-{i}",
                    "request.mount_type": "kv",
                    "request.mount_point": "secret/",
                    "request.operation": "read",
                    "time": "2026-11-20T10:00:{i:02d}.000Z",
                    "error": "1 error occurred:\n\t* permission denied\n\n",
                },
                repeat=12,
            ),
        ),
        True,
    ),
    Case(
        "12 denials on 12 keys",
        (
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {
                    "eventID": "x{i}",
                    "errorCode": "AccessDeniedException",
                    "resources": [
                        {
                            "type": "AWS::KMS::Key",
                            "ARN": "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-0000000000{i:02d}",
                        }
                    ],
                },
                repeat=12,
            ),
        ),
        True,
    ),
    Case(
        "12 denials on one key",
        (
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {"eventID": "x{i}", "errorCode": "AccessDeniedException"},
                repeat=12,
            ),
        ),
        False,
    ),
)
