-- name: model_features
-- answers: The learned anomaly model's features, per key, principal and hour (one definition: training, batch scoring and the stream worker's live scoring all run this text).
-- param: start timestamp start of the window (inclusive)
-- param: end timestamp end of the window (exclusive)
-- example: start=2026-11-01T00:00:00Z end=2026-12-31T00:00:00Z
WITH per_pair AS (
    SELECT key_uri,
           coalesce(actor_principal, '?')                                        AS principal,
           any_value(provider)                                                   AS provider,
           date_trunc('hour', time)                                              AS hour,
           count(*)                                                              AS events,
           count(*) FILTER (WHERE is_usage)                                      AS usage_events,
           count(*) FILTER (WHERE op = 'decrypt')                                AS decrypts,
           count(*) FILTER (WHERE op IN ('encrypt', 'generate_data_key', 'reencrypt')) AS encrypts,
           count(*) FILTER (WHERE op IN ('sign', 'verify', 'mac', 'verify_mac')) AS signs,
           count(*) FILTER (WHERE NOT is_usage)                                  AS lifecycle_events,
           count(*) FILTER (WHERE NOT success)                                   AS failures,
           count(DISTINCT op)                                                    AS distinct_ops,
           count(DISTINCT src_ip)                                                AS distinct_ips,
           count(DISTINCT user_agent)                                            AS distinct_agents,
           list(uid ORDER BY time, uid)[1:200]                                   AS evidence
    FROM events
    WHERE key_uri IS NOT NULL AND key_uri NOT LIKE '%:alias/%'
      AND time >= CAST($start AS TIMESTAMPTZ) AND time < CAST($end AS TIMESTAMPTZ)
    GROUP BY key_uri, principal, hour
)
SELECT *,
       count(*) OVER (PARTITION BY principal, hour)                 AS principal_keys_in_hour,
       count(*) OVER (PARTITION BY key_uri, hour)                   AS key_principals_in_hour,
       CAST(hour(hour AT TIME ZONE 'UTC') < 6 AS INTEGER)           AS night,
       CAST(dayofweek(hour AT TIME ZONE 'UTC') IN (0, 6) AS INTEGER) AS weekend
FROM per_pair
ORDER BY hour, key_uri, principal;
