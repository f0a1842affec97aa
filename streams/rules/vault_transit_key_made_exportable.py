"""Vault transit key made exportable, plaintext-backup-able or deletable.

``exportable`` and ``allow_plaintext_backup`` can never be turned off once set, and
``deletion_allowed`` is the step before an immediate, unrecoverable ``DELETE``.
"""

from ingest.schema import KeyEvent, KeyOp
from streams.findings import Action, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import principal

_FLAGS = ("exportable", "allow_plaintext_backup", "deletion_allowed")

RULE = Rule(
    id="vault_transit.key_made_exportable",
    title="Transit key made exportable or deletable",
    severity=Severity.MEDIUM,
    category=Category.POLICY_VIOLATION,
    action=Action.INVESTIGATE,
    ops=frozenset({KeyOp.CONFIG_CHANGE, KeyOp.CREATE}),
    runbook="Exportability cannot be revoked: if unplanned, create a new key, migrate, and retire this one.",
    false_positives="Keys created exportable by design for BYOK distribution.",
    covers=("gap:transit-config-exportable-deletable",),
)


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    flags = [f for f in _FLAGS if event.details.get(f) is True]
    if not event.success or not flags or event.key is None:
        return None
    return Hit(
        dedup=f"{event.key.uri}|{','.join(flags)}",
        message=f"{principal(event)} set {', '.join(flags)} on {event.key.uri}",
        details={"flags": flags},
    )


CASES = (
    Case(
        "deletion allowed",
        (
            step(
                "vault/transit_session.log#1",
                {"request.path": "transit/keys/payments/config", "request.data": {"deletion_allowed": True}},
            ),
        ),
        True,
    ),
    Case(
        "min version change only",
        (
            step(
                "vault/transit_session.log#1",
                {"request.path": "transit/keys/payments/config", "request.data": {"min_decryption_version": 2}},
            ),
        ),
        False,
    ),
)
