-- name: expiring_keys
-- answers: Which live keys expire (keyInfo.expiresAt in the latest inventory) before a time?
-- param: before timestamp keys expiring before this time are listed
-- example: before=2027-06-01T00:00:00Z
SELECT * FROM (
    SELECT key_id,
           system,
           status,
           algorithm,
           CAST(doc->>'$.keyInfo.expiresAt' AS TIMESTAMPTZ) AS expires_at,
           taken_at                                          AS as_of
    FROM inventory_latest
    WHERE status IS DISTINCT FROM 'destroyed'
)
WHERE expires_at IS NOT NULL AND expires_at < CAST($before AS TIMESTAMPTZ)
ORDER BY expires_at, key_id;
