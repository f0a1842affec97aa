"""A Key Vault key, secret or certificate read by a principal for the first time, or a deleted one
recovered or restored from a backup.

Panther alerts on every certificate, key and secret read and every recovery; in a busy vault that
is every unwrap-key warm-up and every app start. What matters is a principal reaching an object it
never touched before (a stolen identity exploring, a new grantee using a fresh grant) and an object
coming back from deletion or from a backup file (which may be a copy taken elsewhere). kmo keeps,
per principal, the objects it has read (on the principal's partition) and fires once per principal
and hour, however many new objects it read in that hour.
"""

from ingest.schema import KeyEvent, KeyOp, Provider
from streams.findings import Action, AnalyticType, Category, Severity
from streams.rules.base import Case, Context, Hit, Rule, step
from streams.rules.helpers import approved, learn, principal

_READS = frozenset({KeyOp.DESCRIBE, KeyOp.SECRET_READ})
_RETURNS = frozenset({KeyOp.CANCEL_DESTROY, KeyOp.RESTORE})

RULE = Rule(
    id="azure_kv.object_read_first_time",
    title="Key Vault object read by a principal for the first time, or recovered or restored",
    severity=Severity.LOW,
    category=Category.ANOMALOUS_USAGE,
    action=Action.INVESTIGATE,
    ops=_READS | _RETURNS,
    scope="principal",
    attack=("T1555", "T1552"),
    runbook="1. Confirm the principal is meant to use the object (a new deployment, a new grant). "
    "2. For a recovery or restore, confirm the change ticket and where the backup came from.",
    false_positives="New deployments reading their keys and secrets once; planned recoveries. When kmo "
    "starts on an existing estate each principal's reads are new once (one low finding per principal and "
    "hour); a principal that reads more than 200 distinct objects is remembered for its first 200.",
    covers=("#14", "#16", "#19"),
    analytic=AnalyticType.STATISTICAL,
)


def _object(event: KeyEvent) -> str | None:
    """``<vault>/<keys|secrets|certificates>/<name>``: versions are one object (a new version of a
    secret an app already reads is not a new reach)."""
    if event.key is not None:
        return _short(event.key.uri)
    d = event.details
    found = d.get("secret_id") or d.get("certificate_id")
    if found:
        return _short(str(found))
    for kind in ("key", "secret", "certificate"):  # Activity Log: resource names, not object ids
        if d.get(f"{kind}_name"):
            return f"{d.get('vault', '-')}/{kind}s/{d[f'{kind}_name']}"
    return None


def _short(object_id: str) -> str:
    host, _, path = object_id.removeprefix("https://").partition("/")
    kind, _, rest = path.partition("/")
    return f"{host.split('.', 1)[0]}/{kind}/{rest.split('/', 1)[0]}"


def match(event: KeyEvent, ctx: Context) -> Hit | None:
    if event.provider is not Provider.AZURE_KEYVAULT or not event.success or approved(event, ctx.policy):
        return None
    target = _object(event)
    if target is None:  # a vault-level read (VaultGet, lists)
        return None
    if event.op in _RETURNS:
        return Hit(dedup=principal(event), message=f"{principal(event)} {event.operation} {target}", keys=None)
    known, _seen, _first = learn(ctx.state, f"kv-read|{principal(event)}", target, event)
    if known:
        return None
    return Hit(dedup=principal(event), message=f"{principal(event)} read {target} for the first time")


_OK = {"resultSignature": "OK", "properties.httpStatusCode": 200}

CASES = (
    Case("a secret read for the first time", (step("azure/PT1H.json#2"),), True),
    Case(
        "a certificate read (Activity Log)",
        (
            step(
                "azure/activity_diagnostics_removed.json",
                {
                    "operationName": "Microsoft.KeyVault/vaults/certificates/read",
                    "resourceId": "/subscriptions/0000aaaa-1111-2222-3333-444455556666/resourceGroups/payments-rg/"
                    "providers/Microsoft.KeyVault/vaults/payments-kv/certificates/tls-edge",
                },
            ),
        ),
        True,
    ),
    Case(
        "a purged key recovered",
        (
            step(
                "azure/PT1H.json#1",
                {
                    **_OK,
                    "operationName": "KeyRecover",
                    "properties.id": "https://payments-kv.vault.azure.net/keys/db-tde",
                },
            ),
        ),
        True,
    ),
    Case("a key unwrap", (step("azure/PT1H.json#0"),), False),
    Case(
        "a secret read by the approved pipeline",
        (step("azure/PT1H.json#2"),),
        False,
        policy={"approved_principals": ["mallory@contoso.com"]},
    ),
)
