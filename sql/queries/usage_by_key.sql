-- name: usage_by_key
-- answers: How often was each key used in a window, per version, principal and day (usage operations only)?
-- param: since timestamp start of the window (inclusive)
-- param: until timestamp end of the window (exclusive)
-- example: since=2026-11-01T00:00:00Z until=2027-01-01T00:00:00Z
SELECT key_uri,
       key_version,
       actor_principal,
       CAST(date_trunc('day', time AT TIME ZONE 'UTC') AS DATE) AS day,
       count(*)                                                 AS events,
       count(*) FILTER (WHERE NOT success)                      AS failures,
       list(DISTINCT op ORDER BY op)                            AS ops
FROM events
WHERE is_usage AND key_uri IS NOT NULL
  AND time >= CAST($since AS TIMESTAMPTZ) AND time < CAST($until AS TIMESTAMPTZ)
GROUP BY ALL
ORDER BY day, key_uri, key_version NULLS FIRST, actor_principal NULLS FIRST;
