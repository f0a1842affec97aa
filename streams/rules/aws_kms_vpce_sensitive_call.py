"""A sensitive KMS call seen as VPC-endpoint network activity.

CloudTrail network-activity events record calls that pass through a VPC endpoint, including the ones
the endpoint policy denied (``VpceAccessDenied``), which the management-event log never shows.
Decrypt, GenerateDataKey, CreateKey or ScheduleKeyDeletion arriving that way from an endpoint is
how a workload inside a private network reaches keys: worth a look when it was denied (someone
probing from inside), and an inventory of which endpoints touch which keys when it was not.
"""

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import principal

RULE = Rule(
    id="aws_kms.vpce_sensitive_call",
    title="Sensitive KMS call through a VPC endpoint",
    severity=Severity.MEDIUM,
    category=Category.ANOMALOUS_USAGE,
    action=Action.INVESTIGATE,
    ops=frozenset({KeyOp.DECRYPT, KeyOp.GENERATE_DATA_KEY, KeyOp.CREATE, KeyOp.SCHEDULE_DESTROY}),
    attack=("T1530", "T1485"),
    runbook="1. Identify the workload behind the endpoint and principal. 2. If the call was denied, find "
    "what tried it; if allowed and unexpected, tighten the endpoint policy.",
    false_positives="Workloads in private subnets that use KMS through their endpoint every day: baseline "
    "them by endpoint and principal.",
    covers=("#9",),
    dedup_seconds=86400,
)

_SENSITIVE = frozenset({"Decrypt", "GenerateDataKey", "CreateKey", "ScheduleKeyDeletion"})


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    d = event.details
    if d.get("event_type") != "AwsVpceEvent" or event.operation not in _SENSITIVE:
        return None
    endpoint = d.get("vpc_endpoint", "-")
    outcome = "denied" if not event.success else "allowed"
    return Hit(
        dedup=f"{endpoint}|{principal(event)}|{event.operation}|{outcome}",
        message=f"{principal(event)} called {event.operation} through {endpoint} ({outcome}: "
        f"{event.error_code or 'ok'})",
        details={"vpc_endpoint": endpoint, "outcome": outcome},
    )


_VPCE = {
    "eventType": "AwsVpceEvent",
    "eventCategory": "NetworkActivity",
    "vpcEndpointId": "vpce-0a1b2c3d4e5f60718",
    "errorCode": "VpceAccessDenied",
    "errorMessage": "The request was denied due to a VPC endpoint policy",
}

CASES = (
    Case("Decrypt denied at the endpoint", (step("cloudtrail/decrypt_assumed_role.json", _VPCE),), True),
    Case(
        "ScheduleKeyDeletion through the endpoint",
        (step("cloudtrail/decrypt_assumed_role.json", {**_VPCE, "eventName": "ScheduleKeyDeletion"}),),
        True,
    ),
    Case("Decrypt as a management event", (step("cloudtrail/decrypt_assumed_role.json"),), False),
    Case(
        "DescribeKey through the endpoint",
        (step("cloudtrail/decrypt_assumed_role.json", {**_VPCE, "eventName": "DescribeKey"}),),
        False,
    ),
)
