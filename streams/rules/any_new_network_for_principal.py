"""A principal calling from a network it has never used (IPv4 /24, IPv6 /48), after a learning period.

Workloads call from stable subnets and people from a few offices or VPNs; stolen credentials are
used from somewhere else.
"""

import ipaddress
from datetime import timedelta

from ingest.schema import KeyEvent
from streams.findings import Action, AnalyticType, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import is_service, learn, principal

MIN_HISTORY = 20  # calls seen before a principal's networks count as known

RULE = Rule(
    id="any.new_network_for_principal",
    title="Principal calling from a new network",
    severity=Severity.LOW,
    category=Category.ANOMALOUS_USAGE,
    action=Action.INVESTIGATE,
    ops=None,
    scope="principal",
    attack=("T1078",),
    runbook="Check the address (VPN, office, cloud provider range); if unexplained, rotate the principal's credentials.",
    false_positives="New office or VPN ranges; autoscaling into a new subnet.",
    covers=("gap:new-source-network",),
    dedup_seconds=86400,
    analytic=AnalyticType.STATISTICAL,
)


def network(ip: str) -> str:
    addr = ipaddress.ip_address(ip)
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if event.src_ip is None or is_service(event):
        return None
    net = network(event.src_ip)
    name = f"nets|{principal(event)}"
    known, seen, first = learn(ctx.state, name, net, event)
    learning = timedelta(days=ctx.policy.new_principal_learning_days).total_seconds()
    # established = seen often enough, over the learning period, to have a known set
    if known or seen < MIN_HISTORY or event.time.timestamp() - first < learning:
        return None
    return Hit(
        dedup=f"{principal(event)}|{net}",
        message=f"{principal(event)} called from new network {net}",
        details={"network": net},
        keys=[],
    )


_HISTORY = step(
    "cloudtrail/decrypt_assumed_role.json", {"eventID": "a{i}", "eventTime": "2026-11-01T10:{i:02d}:00Z"}, repeat=20
)
CASES = (
    Case(
        "new network after a week of history",
        (
            _HISTORY,
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {"eventID": "b", "eventTime": "2026-11-08T10:00:00Z", "sourceIPAddress": "203.0.113.5"},
            ),
        ),
        True,
    ),
    Case(
        "same /24",
        (
            _HISTORY,
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {"eventID": "b", "eventTime": "2026-11-08T10:00:00Z", "sourceIPAddress": "10.1.2.99"},
            ),
        ),
        False,
    ),
    Case(
        "too little history",
        (
            step("cloudtrail/decrypt_assumed_role.json", {"eventID": "a", "eventTime": "2026-11-01T10:00:00Z"}),
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {"eventID": "b", "eventTime": "2026-11-08T10:00:00Z", "sourceIPAddress": "203.0.113.5"},
            ),
        ),
        False,
    ),
)
