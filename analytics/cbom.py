"""The key inventory as a CycloneDX 1.6 cryptographic bill of materials (CBOM).

Each key is a ``cryptographic-asset`` of asset type ``related-crypto-material`` (secret or private
key, its NIST state, size, dates, the system that secures it) and refers to an ``algorithm`` asset
(primitive, parameter set or curve, classical and quantum security levels, and the FIPS 140-3 level
of the module where kmo knows it). The keys come from the warehouse's latest inventory snapshot per
key (``inventory_latest``): what ``kmo inventory --all --publish`` last saw. No key material is in it.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from actions.compliance import fips_status
from analytics.query import run_query
from ingest.schema import format_timestamp
from kmo.settings import Settings

# kmo algorithm -> (CycloneDX primitive, parameter set / curve, classical bits, NIST quantum level)
ALGORITHMS: dict[str, dict[str, Any]] = {
    "AES-256": {"primitive": "ae", "parameterSetIdentifier": "256", "mode": "gcm",
                "classicalSecurityLevel": 256, "nistQuantumSecurityLevel": 5},
    "RSA-2048": {"primitive": "pke", "parameterSetIdentifier": "2048", "classicalSecurityLevel": 112,
                 "nistQuantumSecurityLevel": 0},
    "RSA-4096": {"primitive": "pke", "parameterSetIdentifier": "4096", "classicalSecurityLevel": 152,
                 "nistQuantumSecurityLevel": 0},
    "ECDSA-P256": {"primitive": "signature", "curve": "secp256r1", "classicalSecurityLevel": 128,
                   "nistQuantumSecurityLevel": 0},
    "ECDSA-P384": {"primitive": "signature", "curve": "secp384r1", "classicalSecurityLevel": 192,
                   "nistQuantumSecurityLevel": 0},
    "Ed25519": {"primitive": "signature", "curve": "Ed25519", "classicalSecurityLevel": 128,
                "nistQuantumSecurityLevel": 0},
}  # fmt: skip
_STATES = {"pre-activation", "active", "suspended", "deactivated", "compromised", "destroyed"}
_SECURED_BY = {"aws-kms": "KMS", "gcp-kms": "KMS", "azure-keyvault": "KMS", "vault": "Software", "hsm": "HSM",
               "local": "Software"}  # fmt: skip
_FIPS_LEVEL = {"aws-kms": "fips140-3-l3"}  # AWS documents its KMS HSMs as FIPS 140-3 Level 3


def _certification(system: str) -> list[str]:
    validated, _what = fips_status(system, os.environ.get("KMO_HSM_FIPS_CERT"))
    if validated is True:
        return [_FIPS_LEVEL.get(system, "other")]
    return ["none"] if validated is False else ["unknown"]


def build_cbom(rows: list[dict[str, Any]], *, now: datetime | None = None) -> dict[str, Any]:
    """A CycloneDX 1.6 document for inventory rows (``inventory_latest`` columns)."""
    now = now or datetime.now(UTC)
    algorithms: dict[tuple[str, str], dict[str, Any]] = {}
    keys = []
    for row in rows:
        doc = orjson.loads(row["doc"]) if isinstance(row.get("doc"), str) else (row.get("doc") or {})
        info = doc.get("keyInfo", {})
        algorithm, system = row.get("algorithm"), row["system"]
        algo_ref = None
        if algorithm in ALGORITHMS:
            algo_ref = f"algorithm:{algorithm}:{system}"
            algorithms.setdefault(
                (algorithm, system),
                {
                    "type": "cryptographic-asset",
                    "bom-ref": algo_ref,
                    "name": algorithm,
                    "cryptoProperties": {
                        "assetType": "algorithm",
                        "algorithmProperties": {
                            **ALGORITHMS[algorithm],
                            "executionEnvironment": "hardware" if system == "hsm" else "unknown",
                            "certificationLevel": _certification(system),
                        },
                    },
                    "properties": [{"name": "kmo:system", "value": system}],
                },
            )
        material: dict[str, Any] = {
            "type": "secret-key" if algorithm == "AES-256" else "private-key",
            "id": row["key_id"],
            "state": row["state"] if row.get("state") in _STATES else "active",
            "securedBy": {"mechanism": _SECURED_BY.get(system, "Software")},
        }
        if algo_ref:
            material["algorithmRef"] = algo_ref
        if row.get("key_size"):
            material["size"] = int(row["key_size"])
        if row.get("created_at"):
            material["creationDate"] = format_timestamp(row["created_at"])
        if row.get("current_since"):
            material["updateDate"] = format_timestamp(row["current_since"])
        if info.get("expiresAt"):
            material["expirationDate"] = info["expiresAt"]
        properties = [
            {"name": "kmo:system", "value": system},
            {"name": "kmo:inventoriedAt", "value": format_timestamp(row["taken_at"])},
        ]
        for name, value in (("kmo:keyType", info.get("keyType")), ("kmo:version", info.get("version")),
                            ("kmo:status", row.get("status"))):  # fmt: skip
            if value is not None:
                properties.append({"name": name, "value": str(value)})
        keys.append(
            {
                "type": "cryptographic-asset",
                "bom-ref": f"key:{row['key_id']}",
                "name": row["key_id"],
                "cryptoProperties": {
                    "assetType": "related-crypto-material",
                    "relatedCryptoMaterialProperties": material,
                },
                "properties": properties,
            }
        )
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": format_timestamp(now),
            "tools": {"components": [{"type": "application", "name": "kmo", "group": "key-management-orchestrator"}]},
        },
        "components": [*algorithms.values(), *keys],
    }


def cbom_from_warehouse(settings: Settings) -> dict[str, Any]:
    rows = run_query(
        settings,
        "SELECT key_id, system, status, state, version, algorithm, key_size, created_at, current_since, taken_at, "
        "CAST(doc AS VARCHAR) AS doc FROM inventory_latest ORDER BY system, key_id",
    ).to_pylist()
    return build_cbom(rows)
