-- name: audit_unused
-- answers: Which keys the estate held at the end of a period had no successful use during it?
-- param: start timestamp start of the period (inclusive)
-- param: end timestamp end of the period (exclusive)
-- example: start=2026-11-29T00:00:00Z end=2026-12-01T00:00:00Z
WITH held AS (
    SELECT key_id FROM (
        SELECT key_id, status, row_number() OVER (PARTITION BY system, key_id ORDER BY taken_at DESC, uid) AS rn
        FROM inventory_snapshots WHERE taken_at <= CAST($end AS TIMESTAMPTZ)
    ) WHERE rn = 1 AND status IS DISTINCT FROM 'destroyed'
    UNION
    SELECT DISTINCT key_uri FROM events
    WHERE key_uri IS NOT NULL AND key_uri NOT LIKE '%:alias/%' AND time < CAST($end AS TIMESTAMPTZ)
      AND NOT EXISTS (SELECT 1 FROM inventory_snapshots WHERE taken_at <= CAST($end AS TIMESTAMPTZ))
),
used AS (
    SELECT DISTINCT key_uri FROM events
    WHERE is_usage AND success AND time >= CAST($start AS TIMESTAMPTZ) AND time < CAST($end AS TIMESTAMPTZ)
)
SELECT h.key_id,
       (SELECT max(time) FROM events e WHERE e.key_uri = h.key_id AND e.is_usage AND e.success) AS last_use_ever
FROM held h
WHERE h.key_id NOT IN (SELECT key_uri FROM used)
ORDER BY h.key_id;
