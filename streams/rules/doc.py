"""Writes docs/detections.md from the rules' own metadata (``python -m streams.rules.doc``), so the
coverage table cannot drift from the code; a test checks the committed file is current."""

from __future__ import annotations

from streams.rules import load_rules

# ../shared/design/detections.md catalogue rows, by number: a short name of our own for each.
CATALOGUE = {
    1: "AWS KMS imported key material (Sigma)",
    2: "Key Vault key modified or deleted (Sigma)",
    3: "Key Vault modified or deleted (Sigma)",
    4: "Key Vault secrets modified or deleted (Sigma)",
    5: "EC2 EBS encryption disabled (Sigma)",
    6: "KMS CMK disabled or deleted (Panther)",
    7: "S3 object encrypted with external KMS key (Panther)",
    8: "Resource made public, KMS branch (Panther)",
    9: "Sensitive KMS calls via VPC endpoint (Panther)",
    10: "GCP bulk encryption by GCS agent (Panther)",
    11: "GCP cross-project encryption (Panther)",
    12: "GCP key granted to GCS agent (Panther)",
    13: "GCP key version disabled or destroyed (Panther)",
    14: "Key Vault certificate accessed (Panther)",
    15: "Key Vault deleted (Panther)",
    16: "Key Vault key accessed or recovered (Panther)",
    17: "Key Vault key purged (Panther)",
    18: "Key Vault purged (Panther)",
    19: "Key Vault secret accessed or recovered (Panther)",
    20: "KMS CMK rotation posture (Panther)",
    21: "KMS key policy unrestricted (Panther)",
    22: "KMS CMK disabled or scheduled for deletion (Elastic)",
    23: "KMS imported key material deleted (Elastic)",
    24: "KMS key policy updated (Elastic)",
    25: "S3 object encrypted with external key (Elastic)",
    26: "Key Vault excessive retrieval (Elastic)",
    27: "Key Vault retrieval by rare identity (Elastic)",
    28: "Key Vault modified by unusual user (Elastic)",
    29: "Multiple cloud secrets accessed from one address (Elastic)",
    30: "Discovery API calls from one resource (Elastic)",
    31: "Keys created with an encrypt-for-everyone policy (Splunk)",
    32: "KMS keys performing S3 encryption (Splunk)",
    33: "Mass secret retrieval from Key Vault (Sentinel)",
    34: "Sensitive Key Vault operations (Sentinel)",
    35: "NRT sensitive Key Vault operations (Sentinel)",
    36: "Key Vault access time-series anomaly (Sentinel)",
    37: "KMS key disabled or scheduled for deletion (Chronicle)",
    38: "GCP multiple KMS keys disabled or destroyed (Chronicle)",
    39: "GCP decryption by unexpected service account (Chronicle)",
    40: "Public resources, KMS branch (StreamAlert)",
    41: "Human decrypted value (Google exposure notifications)",
    42: "Blob ransomware with service CMK (Stratus)",
    43: "Blob ransomware with encryption scope (Stratus)",
    44: "Secrets Manager / SSM retrieval (Stratus)",
}


# Why a catalogue row has no kmo rule (none today; kept so a row dropped later must say why).
NOT_COVERED: dict[int, str] = {}

# ../shared/design/detections.md "Gaps" 1-15: each idea, and the rules that cover it (a ``gap:`` tag
# from their metadata, or ``rule:<id>`` for a rule that covers it as part of a wider job), or, after
# a "-", why kmo does not (yet).
GAPS: tuple[tuple[int, str, tuple[tuple[str, str], ...]], ...] = (
    (
        1,
        "Orphaned keys",
        (
            ("no use within the threshold", "gap:orphaned-key"),
            ("keys whose only consumers were deleted", "-needs the consumers' own logs (EC2, RDS, ...)"),
        ),
    ),
    (2, "Rotation overdue, from logs", (("rotation overdue for the key type", "gap:rotation-overdue"),)),
    (
        3,
        "Usage after deactivation or scheduled deletion",
        (
            (
                "calls failing on disabled, pending-deletion, soft-deleted or expired keys; Vault below "
                "min_decryption_version; GCP FAILED_PRECONDITION",
                "gap:use-of-disabled-key",
            ),
        ),
    ),
    (
        4,
        "Disable or delete followed by a revert; minimum pending window",
        (("disable quickly reverted", "gap:disable-reverted"), ("short pending window", "gap:short-pending-window")),
    ),
    (
        5,
        "Key-policy lockout or break-glass changes",
        (("lockout safety check bypassed, or the account root left out", "gap:policy-lockout-bypass"),),
    ),
    (
        6,
        "Grant abuse",
        (
            ("grant to an outside principal", "gap:grant-to-outside-principal"),
            ("bursts of RetireGrant / RevokeGrant", "gap:grant-abuse"),
            ("grants never retired", "-needs a grant inventory (ListGrants), not a log event"),
        ),
    ),
    (
        7,
        "Cross-account or external-principal key use",
        (("use from another account or project", "rule:any.cross_account_use"),),
    ),
    (
        8,
        "Per-key or per-principal volume baselines",
        (("usage spike against the principal's own history", "rule:any.usage_spike"),),
    ),
    (
        9,
        "Encryption-context anomalies",
        (
            (
                "new encryption-context keys for a principal and key (a missing context is a new, empty shape)",
                "gap:encryption-context",
            ),
        ),
    ),
    (
        10,
        "Attribution of service-invoked KMS calls",
        (
            (
                "secrets read through KMS on a user's behalf, counted per user by the SecretARN or PARAMETER_ARN "
                "in the context",
                "rule:any.secret_mass_read",
            ),
            ("joining each call to its parent GetSecretValue", "-Secrets Manager and SSM events are not ingested"),
        ),
    ),
    (
        11,
        "Multi-Region and external key stores",
        (
            (
                "ReplicateKey, UpdatePrimaryRegion, custom key store changes, XKS proxy errors",
                "gap:multi-region-and-key-stores",
            ),
        ),
    ),
    (
        12,
        "HashiCorp Vault",
        (
            ("root-token use", "gap:vault-root-token"),
            ("audit device disabled or changed", "gap:audit-device-disabled"),
            ("seal, rekey, generate-root, barrier key rotation", "gap:vault-seal-rekey-root"),
            ("transit export or backup", "gap:transit-export-backup"),
            ("transit config made exportable or deletable", "gap:transit-config-exportable-deletable"),
            ("ACL policy edits", "gap:vault-acl-policy"),
            ("mass KV reads across distinct paths", "rule:any.secret_mass_read"),
            ("permission-denied and KMIP failure bursts", "gap:error-burst"),
            (
                "tokens used after revoke or expiry",
                "-tokens and accessors are HMAC'd in the log; a revoked token's "
                "use is an ordinary permission denied, counted by the error-burst rule",
            ),
        ),
    ),
    (
        13,
        "HSMs (CloudHSM, Luna)",
        (
            ("key export or wrap", "gap:hsm-key-export"),
            ("object shared to another user", "gap:hsm-object-shared"),
            ("object destroyed", "rule:any.key_destruction_scheduled"),
            ("crypto officer or user created, deleted, re-credentialed", "gap:hsm-user-management"),
            ("failed login bursts (CN_LOGIN, LUNA_LOGIN)", "gap:hsm-failed-logins"),
            ("sequence gaps and reboot-counter changes", "gap:hsm-audit-sequence"),
            ("key attributes modified, audit configuration changed", "gap:hsm-key-attributes-and-audit-config"),
        ),
    ),
    (
        14,
        "Azure Key Vault data-plane key use",
        (
            ("KeyUnwrap / KeyDecrypt / KeySign volume against a baseline", "rule:any.usage_spike"),
            (
                "a principal reading a key or secret for the first time (after a grant or otherwise)",
                "rule:azure_kv.object_read_first_time",
            ),
            (
                "VaultPatch opening networkAcls",
                "-the AuditEvent log does not carry the request body; every "
                "vault change is flagged by azure_kv.vault_changed",
            ),
        ),
    ),
    (
        15,
        "Policy checks tied to the key inventory",
        (
            ("algorithm or size not allowed", "gap:disallowed-algorithm"),
            ("keys without an owner", "gap:ownerless-key"),
            ("keys in use that the inventory does not know", "gap:unknown-key"),
            ("use from accounts or projects outside the allowed scope", "rule:any.cross_account_use"),
            ("use from Regions outside an allowed set", "-the policy has no per-key Region list yet"),
        ),
    ),
)


def render() -> str:
    rules = load_rules()
    by_row: dict[str, list[str]] = {}
    for module in rules:
        for ref in module.RULE.covers:
            by_row.setdefault(ref, []).append(module.RULE.id)
    lines = [
        "# Detections",
        "",
        "Generated by `python -m streams.rules.doc` from the rules' metadata; `tests/unit/test_rules.py`",
        "fails when this file is out of date. Every rule is plain Python in `streams/rules/` with its",
        "own positive and negative cases; the same code runs in `kmo detect` and in the stream worker.",
        "",
        "## Rules",
        "",
        "| rule | title | type | severity | scope | recommended action | ATT&CK |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in sorted(rules, key=lambda m: m.RULE.id):
        r = m.RULE
        lines.append(
            f"| `{r.id}` | {r.title} | {r.category} | {r.severity.name.lower()} | {r.scope} | {r.action} "
            f"| {', '.join(r.attack) or '-'} |"
        )
    lines += [
        "",
        "## Community detections (../shared/design/detections.md catalogue) and the rules that cover them",
        "",
        "| # | detection | kmo rules |",
        "|---|---|---|",
    ]
    for n, name in CATALOGUE.items():
        ids = by_row.get(f"#{n}", [])
        covered = ", ".join(f"`{i}`" for i in sorted(ids))
        lines.append(f"| #{n} | {name} | {covered or 'not covered: ' + NOT_COVERED.get(n, 'not yet')} |")
    lines += [
        "",
        "## Gaps no community rule covers (../shared/design/detections.md, Gaps 1-15), and kmo's rules",
        "",
        "| gap | idea | kmo rules |",
        "|---|---|---|",
    ]
    known = {m.RULE.id for m in rules}
    for number, title, items in GAPS:
        for item, ref in items:
            if ref.startswith("-"):
                covered = "not covered: " + ref[1:]
            elif ref.startswith("rule:"):
                rule_id = ref.removeprefix("rule:")
                if rule_id not in known:
                    raise ValueError(f"GAPS names a rule that does not exist: {rule_id}")
                covered = f"`{rule_id}`"
            else:
                covered = ", ".join(f"`{i}`" for i in sorted(by_row[ref]))
            lines.append(f"| {number}. {title} | {item} | {covered} |")
    uncovered = [n for n in CATALOGUE if f"#{n}" not in by_row]
    lines += [
        "",
        f"Community rows covered: {len(CATALOGUE) - len(uncovered)} of {len(CATALOGUE)}"
        + (f"; not covered: {', '.join(f'#{n}' for n in uncovered)}." if uncovered else "."),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
