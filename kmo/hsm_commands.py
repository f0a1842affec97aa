"""``kmo hsm``: health, backup keys, backup and restore, replication across tokens, consistency.

The configured token comes from ``KMO_HSM_MODULE``, ``KMO_HSM_TOKEN`` and ``KMO_HSM_PIN`` (as for
``kmo run``); another token's user PIN from ``KMO_HSM_PIN_<LABEL>`` (the label upper-cased, other
characters as ``_``) or ``KMO_HSM_TARGET_PIN``; the Security Officer's PIN, for the backup-key
ceremonies, from ``KMO_HSM_SO_PIN``. PINs are read from the environment only and never printed.
Every step that touches key material is a hash-chained audit entry.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import orjson

from kmo.settings import Settings


class HsmConfigError(Exception):
    pass


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise HsmConfigError(f"{name} is not set")
    return value


def token_pin(label: str) -> str:
    """A token's user PIN from the environment (never from the command line, where ps would show it)."""
    specific = "KMO_HSM_PIN_" + re.sub(r"[^A-Z0-9]", "_", label.upper())
    if os.environ.get(specific):
        return os.environ[specific]
    if label == os.environ.get("KMO_HSM_TOKEN") and os.environ.get("KMO_HSM_PIN"):
        return os.environ["KMO_HSM_PIN"]
    if os.environ.get("KMO_HSM_TARGET_PIN"):
        return os.environ["KMO_HSM_TARGET_PIN"]
    raise HsmConfigError(f"no PIN for token {label!r}: set {specific} or KMO_HSM_TARGET_PIN")


def _hsm(label: str | None = None) -> Any:
    from actions.backends.pkcs11_hsm import Pkcs11Hsm

    label = label or _env("KMO_HSM_TOKEN")
    backup_capable = os.environ.get("KMO_HSM_BACKUP_CAPABLE") == "1"
    return Pkcs11Hsm(_env("KMO_HSM_MODULE"), label, token_pin(label), backup_capable=backup_capable)


def cmd_hsm(args: argparse.Namespace, settings: Settings) -> int:
    from actions import hsm_backup
    from actions.audit_log import AuditLog
    from actions.backends.base import BackendError
    from actions.private_files import write_private
    from ingest.schema import KeyRef

    audit = AuditLog(settings.home / "actions" / "audit.jsonl")
    actor = args.actor or getpass.getuser()
    out: Any
    try:
        source = _hsm()
        uri = KeyRef.pkcs11(source.token_label, label=args.key).uri if args.key else None
        base = {"operation": f"hsm-{args.step}", "actor": actor, "system": "hsm", "keyId": uri}
        if args.step == "health":
            from actions.hsm_health import health

            out = health(source, fips_cert=os.environ.get("KMO_HSM_FIPS_CERT"))
            if args.publish:
                _publish_heartbeat(settings, out)
            print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
            return 0 if out["status"] != "failing" else 1
        if args.step == "consistency":
            tokens = [t.strip() for t in (args.tokens or "").split(",") if t.strip()]
            if len(tokens) < 2 or not args.key:
                print("kmo hsm consistency: --key and --tokens T1,T2[,...] are required", file=sys.stderr)
                return 2
            out = hsm_backup.consistency([_hsm(t) for t in tokens], args.key)
            print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
            return 0 if out["consistent"] else 1
        needs = {
            "backup": ("key", "out"),
            "restore": ("file",),
            "replicate": ("key", "to_token"),
            "backup-key-share": ("to_token",),
        }
        missing = [f"--{f.replace('_', '-')}" for f in needs.get(args.step, ()) if not getattr(args, f)]
        if missing:
            print(f"kmo hsm {args.step}: needs {', '.join(missing)}", file=sys.stderr)
            return 2
        audit.append({**base, "outcome": "requested"})
        try:
            if args.step == "backup-key-init":
                out = hsm_backup.init_backup_key(source, _env("KMO_HSM_SO_PIN"))
            elif args.step == "backup-key-share":
                out = hsm_backup.share_backup_key(source, _env("KMO_HSM_SO_PIN"), _hsm(args.to_token))
            elif args.step == "backup":
                doc = hsm_backup.backup(source, args.key)
                write_private(Path(args.out), json.dumps(doc, indent=2).encode())
                out = {"key": uri, "file": args.out, "versions": [v["version"] for v in doc["versions"]]}
                base["where"] = str(Path(args.out).absolute())
            elif args.step == "restore":
                doc = json.loads(Path(args.file).read_text())
                target = _hsm(args.to_token) if args.to_token else source
                info = hsm_backup.restore(target, doc)
                base["keyId"] = info.ref.uri
                out = {"keyInfo": info.to_schema(), "versions": info.versions, "from": args.file}
            else:  # replicate
                info = hsm_backup.replicate(source, args.key, _hsm(args.to_token))
                base["where"] = info.ref.uri
                out = {"keyInfo": info.to_schema(), "versions": info.versions, "from": uri}
        except (BackendError, OSError, ValueError, KeyError) as exc:
            audit.append({**base, "outcome": "failed", "error": f"{type(exc).__name__}: {exc}"[:500]})
            raise
        audit.append({**base, "outcome": "succeeded"})
    except HsmConfigError as exc:
        print(f"kmo hsm {args.step}: {exc}", file=sys.stderr)
        return 2
    except (BackendError, OSError, ValueError, KeyError) as exc:
        print(f"kmo hsm {args.step}: {exc}", file=sys.stderr)
        return 1
    print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    return 0


def _publish_heartbeat(settings: Settings, doc: dict[str, Any]) -> None:
    from kmo.kafka import ensure_all_topics, produce_confirmed

    produce_confirmed(settings, ensure_all_topics(settings).coverage.name, [(b"hsm", orjson.dumps(doc))])


def add_parser(sub: Any) -> None:
    p = sub.add_parser("hsm", help="HSM health, backup keys, backup/restore, replication, consistency")
    p.add_argument(
        "step",
        choices=["health", "backup-key-init", "backup-key-share", "backup", "restore", "replicate", "consistency"],
    )
    p.add_argument("file", nargs="?", help="restore: the backup file")
    p.add_argument("--key", help="the key (its label on the token)")
    p.add_argument("--out", help="backup: where to write the backup (0600; material wrapped, never in clear)")
    p.add_argument("--to-token", help="backup-key-share, replicate, restore: the other token's label")
    p.add_argument("--tokens", help="consistency: the tokens to compare, comma-separated")
    p.add_argument("--publish", action="store_true", help="health: send the heartbeat to the coverage topic")
    p.add_argument("--actor", help="who is acting (default: the login name); recorded in the audit log")
    p.set_defaults(func=cmd_hsm)
