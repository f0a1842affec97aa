-- name: audit_inventory
-- answers: Which keys did the estate hold at a time: each key's latest inventory snapshot at or before it (destroyed keys left out), or, where no snapshot was ever published, the keys the logs had named by then?
-- param: as_of timestamp the moment the inventory is taken at
-- example: as_of=2026-12-01T00:00:00Z
WITH snap AS (
    SELECT * EXCLUDE (rn) FROM (
        SELECT key_id, system, status, doc,
               row_number() OVER (PARTITION BY system, key_id ORDER BY taken_at DESC, uid) AS rn
        FROM inventory_snapshots
        WHERE taken_at <= CAST($as_of AS TIMESTAMPTZ)
    ) WHERE rn = 1 AND status IS DISTINCT FROM 'destroyed'
),
seen AS (
    SELECT DISTINCT key_uri AS key_id, provider AS system
    FROM events
    WHERE key_uri IS NOT NULL AND key_uri NOT LIKE '%:alias/%' AND time <= CAST($as_of AS TIMESTAMPTZ)
)
SELECT key_id, system, 'inventory snapshot' AS basis, doc->>'$.keyInfo.keyType' AS key_type,
       doc->>'$.keyInfo.algorithm' AS algorithm,
       status,
       coalesce(CAST(doc->>'$.currentSince' AS TIMESTAMPTZ), CAST(doc->>'$.keyInfo.createdAt' AS TIMESTAMPTZ)) AS current_since,
       CAST(doc->>'$.keyInfo.expiresAt' AS TIMESTAMPTZ) AS expires_at
FROM snap
UNION ALL
SELECT key_id, system, 'audit logs', NULL, NULL, NULL, NULL, NULL FROM seen WHERE NOT EXISTS (SELECT 1 FROM snap)
ORDER BY key_id;
