"""A principal using a key with encryption-context keys it has never used with that key.

Applications bind ciphertext to a fixed context shape (``{"service", "tenant"}``); a new shape from
the same principal means a different code path, or someone else holding its credentials and
calling the API by hand. Only context *keys* are compared; values never leave the log. On AWS KMS
(the one provider that logs contexts) a call without a context, from a principal that always passed
one, is a new shape too: code that drops the context is code that was not written by the app's team.
"""

from datetime import timedelta

from ingest.schema import KeyEvent, KeyOp, Provider
from streams.findings import Action, AnalyticType, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import learn, principal

MIN_HISTORY = 20
_CONTEXT_OPS = frozenset({KeyOp.ENCRYPT, KeyOp.DECRYPT, KeyOp.GENERATE_DATA_KEY, KeyOp.REENCRYPT})

RULE = Rule(
    id="any.new_encryption_context",
    title="New encryption-context keys for a principal and key",
    severity=Severity.LOW,
    category=Category.ANOMALOUS_USAGE,
    action=Action.INVESTIGATE,
    ops=_CONTEXT_OPS,
    scope="key",
    attack=("T1078",),
    runbook="Compare with the application's code; if no deployment explains it, treat the principal's credentials as stolen.",
    false_positives="Application releases that change the context they bind.",
    covers=("gap:encryption-context",),
    dedup_seconds=86400,
    analytic=AnalyticType.STATISTICAL,
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if not event.success or event.key is None:
        return None
    if not event.context_keys and (event.provider is not Provider.AWS_KMS or event.op not in _CONTEXT_OPS):
        return None  # only AWS KMS logs contexts; there, a missing one is a shape of its own ("")
    name = f"ctx|{event.key.uri}|{principal(event)}"
    shape = ",".join(event.context_keys)
    known, seen, first = learn(ctx.state, name, shape, event)
    learning = timedelta(days=ctx.policy.new_principal_learning_days).total_seconds()
    # established = seen often enough, over the learning period, to have a known set
    if known or seen < MIN_HISTORY or event.time.timestamp() - first < learning:
        return None
    return Hit(
        dedup=f"{event.key.uri}|{principal(event)}|{shape}",
        message=f"{principal(event)} used {event.key.uri} with new context keys [{shape}]"
        if shape
        else f"{principal(event)} used {event.key.uri} without the encryption context it always passed",
        details={"context_keys": shape},
    )


_HISTORY = step(
    "cloudtrail/decrypt_assumed_role.json", {"eventID": "a{i}", "eventTime": "2026-11-01T10:{i:02d}:00Z"}, repeat=20
)
_NEW = {"eventID": "b", "eventTime": "2026-11-08T10:00:00Z", "requestParameters.encryptionContext": {"bucket": "x"}}
CASES = (
    Case(
        "new context shape after a week of history",
        (_HISTORY, step("cloudtrail/decrypt_assumed_role.json", _NEW)),
        True,
    ),
    Case(
        "context dropped after a week of history",
        (
            _HISTORY,
            step(
                "cloudtrail/decrypt_assumed_role.json",
                {"eventID": "b", "eventTime": "2026-11-08T10:00:00Z", "requestParameters.encryptionContext": None},
            ),
        ),
        True,
    ),
    Case(
        "same shape",
        (_HISTORY, step("cloudtrail/decrypt_assumed_role.json", {"eventID": "b", "eventTime": "2026-11-08T10:00:00Z"})),
        False,
    ),
    Case(
        "too little history",
        (
            step("cloudtrail/decrypt_assumed_role.json", {"eventID": "a", "eventTime": "2026-11-01T10:00:00Z"}),
            step("cloudtrail/decrypt_assumed_role.json", _NEW),
        ),
        False,
    ),
)
