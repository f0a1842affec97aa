"""``policy-check`` and ``audit``: the stream's own inventory rules, run over what a key manager says now.

The rules are the same modules the Faust worker and ``kmo detect`` run (rotation overdue, disallowed
algorithm, key without owner), so a policy is enforced identically wherever it is checked. Each rule
maps to the controls it evidences in each framework; a framework's status lists only its own.
Usage figures (rotations completed, unused keys) come from the audit warehouse, and the response
says so when no warehouse answered rather than reporting zeros.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from actions.backends.base import KeyBackend, KeyInfo
from ingest.schema import format_timestamp
from streams.engine import Engine
from streams.findings import Finding
from streams.inventory import Inventory, InventoryKey
from streams.policy import Policy
from streams.rules import load_rules

INVENTORY_RULES = ("any.rotation_overdue", "any.inventory_weak_algorithm", "any.key_without_owner")

# rule -> framework -> the control it evidences
CONTROLS: dict[str, dict[str, str]] = {
    "any.rotation_overdue": {
        "NIST": "SP 800-57 Pt1 Rev5 §5.3 (cryptoperiods)",
        "PCI-DSS": "v4.0 3.6.1, 3.7.4 (key changes at the end of the cryptoperiod)",
        "HIPAA": "45 CFR 164.312(a)(2)(iv) (encryption and decryption)",
        "SOC2": "CC6.1 (logical access security, encryption keys)",
    },
    "any.inventory_weak_algorithm": {
        "NIST": "SP 800-131A Rev2 (transitions of algorithms and key lengths)",
        "FIPS-140-3": "SP 800-140C (approved security functions)",
        "PCI-DSS": "v4.0 3.6.1 (strong cryptography)",
        "HIPAA": "45 CFR 164.312(a)(2)(iv) (encryption and decryption)",
        "SOC2": "CC6.1 (logical access security, encryption keys)",
    },
    "any.key_without_owner": {
        "NIST": "SP 800-57 Pt2 Rev1 §3 (key management roles)",
        "PCI-DSS": "v4.0 3.7.8 (key custodians acknowledge their responsibilities)",
        "HIPAA": "45 CFR 164.308(a)(2) (assigned security responsibility)",
        "SOC2": "CC6.1 (logical access security, encryption keys)",
    },
}
# Whether the module that holds each system's keys is FIPS 140-3 validated, as far as kmo knows.
FIPS_MODULES = {
    "aws-kms": (True, "AWS KMS HSMs (FIPS 140-3 validated, per AWS's KMS documentation)"),
    "local": (False, "kmo's local keystore: pyca/cryptography, not FIPS-validated as configured"),
    "vault": (None, "Vault transit: validated only in a FIPS build of Vault Enterprise; not recorded here"),
    "hsm": (None, "PKCS#11 module: record its FIPS 140-3 certificate (KMO_HSM_FIPS_CERT)"),
    "gcp-kms": (None, "Cloud KMS: FIPS 140 level depends on the protection level (SOFTWARE or HSM); not recorded here"),
    "azure-keyvault": (
        None,
        "Azure: Key Vault software keys, Premium HSM keys and Managed HSM differ; not recorded here",
    ),
}


def fips_status(system: str, fips_cert: str | None = None) -> tuple[bool | None, str]:
    """(validated?, what kmo knows) for the module holding ``system``'s keys."""
    if system == "hsm" and fips_cert:
        return True, f"PKCS#11 module, FIPS 140-3 certificate {fips_cert} (as configured)"
    return FIPS_MODULES.get(system, (None, f"{system}: module validation unknown"))


def inventory_of(infos: list[KeyInfo], system: str) -> Inventory:
    """The stream rules' inventory shape, from a key manager's answer."""
    return Inventory(
        [
            InventoryKey(
                uri=i.ref.uri,
                key_id=i.ref.uri,
                key_type=i.key_type,
                algorithm=i.algorithm,
                key_size=i.key_size,
                created_at=i.created_at,
                last_rotated_at=i.current_since,
                status=i.status,
                owner=i.labels.get("owner"),
                system=system,
            )
            for i in infos
        ]
    )


def inventory_findings(infos: list[KeyInfo], system: str, policy: Policy, now: datetime) -> list[Finding]:
    rules = [m for m in load_rules() if m.RULE.id in INVENTORY_RULES]
    return Engine(rules, policy=policy, inventory=inventory_of(infos, system)).absences(now)


def compliance_status(
    findings: list[Finding], frameworks: list[str], system: str, fips_cert: str | None = None
) -> dict[str, Any]:
    """The specification's complianceStatus, over every requested framework at once."""
    rows: list[dict[str, Any]] = []
    for framework in frameworks:
        for f in findings:
            control = CONTROLS.get(f.rule_id, {}).get(framework)
            if control:
                rows.append(
                    {
                        "framework": framework,
                        "control": control,
                        "rule": f.rule_id,
                        "severity": f.severity.name.lower(),
                        "keyId": f.keys[0] if f.keys else None,
                        "finding": f.message,
                    }
                )
        if framework == "FIPS-140-3":
            validated, what = fips_status(system, fips_cert)
            if not validated:
                rows.append(
                    {
                        "framework": framework,
                        "control": "FIPS 140-3 §7 (validated cryptographic module)",
                        "rule": "module-validation",
                        "severity": "high" if validated is False else "medium",
                        "keyId": None,
                        "finding": what,
                    }
                )
    return {"framework": ", ".join(frameworks), "compliant": not rows, "findings": rows}


def expiring(infos: list[KeyInfo], policy: Policy, now: datetime, notify: timedelta) -> list[dict[str, str]]:
    """Keys whose rotation falls due within ``notify`` (not those already overdue: they are findings)."""
    out = []
    for i in infos:
        period = policy.rotation_days.get(i.key_type or "")
        if period is None or i.current_since is None or i.status != "active":
            continue
        due = i.current_since + timedelta(days=period)
        if now <= due <= now + notify:
            out.append({"keyId": i.ref.uri, "rotationDue": format_timestamp(due)})
    return out


def usage_summary(settings: Any, uris: list[str], since: datetime) -> tuple[int, list[str]] | None:
    """(rotations in the period, keys with no successful use in it) from the warehouse, or None."""
    from analytics.query import QueryError, run_query

    if not uris:
        return 0, []
    try:
        rotations = run_query(
            settings,
            "SELECT count(*) AS n FROM events WHERE op = 'rotate' AND success AND time >= ? "
            "AND list_contains(?, key_uri)",
            [since, uris],
        ).to_pylist()[0]["n"]
        used = {
            r["key_uri"]
            for r in run_query(
                settings,
                "SELECT DISTINCT key_uri FROM events WHERE is_usage AND success AND time >= ? "
                "AND list_contains(?, key_uri)",
                [since, uris],
            ).to_pylist()
        }
    except QueryError:
        return None
    return int(rotations), [u for u in uris if u not in used]


def backend_infos(backend: KeyBackend, key_name: str | None) -> list[KeyInfo]:
    return [backend.describe(key_name)] if key_name else backend.list_keys()
