-- name: rotation_overdue
-- answers: Which live keys' current version is older than a cryptoperiod, as of a time (latest inventory)?
-- param: max_age_days int the cryptoperiod in days (the policy's rotation period for the key type)
-- param: as_of timestamp the time ages are measured at
-- example: max_age_days=90 as_of=2026-12-04T00:00:00Z
SELECT * FROM (
    SELECT key_id,
           system,
           status,
           doc->>'$.keyInfo.keyType'                                                   AS key_type,
           coalesce(current_since, created_at)                                         AS current_since,
           date_diff('day', coalesce(current_since, created_at), CAST($as_of AS TIMESTAMPTZ)) AS age_days
    FROM inventory_latest
    WHERE status IN ('active', 'inactive')
)
WHERE age_days > $max_age_days
ORDER BY age_days DESC, key_id;
