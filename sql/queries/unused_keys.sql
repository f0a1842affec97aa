-- name: unused_keys
-- answers: Which keys (inventoried, or seen in the logs) had no successful use since a time?
-- param: since timestamp keys with no successful usage at or after this time are listed
-- example: since=2026-12-01T00:00:00Z
WITH known AS (
    SELECT key_id AS key_uri, system FROM inventory_latest WHERE status IS DISTINCT FROM 'destroyed'
    UNION
    SELECT DISTINCT key_uri, provider AS system FROM events WHERE key_uri IS NOT NULL AND key_uri NOT LIKE '%:alias/%'
),
used AS (
    SELECT key_uri, max(time) AS last_use FROM events WHERE is_usage AND success AND key_uri IS NOT NULL GROUP BY key_uri
)
SELECT k.key_uri, any_value(k.system) AS system, max(u.last_use) AS last_use
FROM known k
LEFT JOIN used u USING (key_uri)
GROUP BY k.key_uri
HAVING max(u.last_use) IS NULL OR max(u.last_use) < CAST($since AS TIMESTAMPTZ)
ORDER BY last_use NULLS FIRST, k.key_uri;
