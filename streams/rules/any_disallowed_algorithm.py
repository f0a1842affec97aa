"""Key created with an algorithm or size the policy disallows (NIST SP 800-131A, FIPS 140-3)."""

import re

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import principal

_RSA = re.compile(r"RSA[_-]?(\d+)", re.IGNORECASE)

RULE = Rule(
    id="any.disallowed_algorithm",
    title="Key created with a disallowed algorithm or size",
    severity=Severity.HIGH,
    category=Category.POLICY_VIOLATION,
    action=Action.DECOMMISSION,
    ops=frozenset({KeyOp.CREATE, KeyOp.IMPORT}),
    runbook="Create a compliant key, migrate its users, and schedule this one for destruction.",
    false_positives="Legacy interoperability keys with a documented exception.",
    covers=("gap:disallowed-algorithm",),
)


def weak(spec: str, policy) -> bool:
    upper = spec.upper()
    if any(bad.upper() in upper for bad in policy.disallowed_algorithms):
        return True
    m = _RSA.search(upper)
    return bool(m and int(m.group(1)) < policy.min_rsa_bits)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    spec = event.details.get("key_spec") or event.details.get("algorithm") or event.details.get("type")
    if not event.success or not isinstance(spec, str) or not weak(spec, ctx.policy):
        return None
    key = event.key.uri if event.key else "-"
    return Hit(dedup=key, message=f"{principal(event)} created {key} as {spec}", details={"algorithm": spec})


CASES = (
    Case(
        "RSA-1024", (step("cloudtrail/create_key_no_resources.json", {"requestParameters.keySpec": "RSA_1024"}),), True
    ),
    Case("RSA-4096", (step("cloudtrail/create_key_no_resources.json"),), False),
)
