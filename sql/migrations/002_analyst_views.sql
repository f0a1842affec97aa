-- 002_analyst_views: the first questions a SOC analyst asks of a key.

-- How much was each key used, per day and operation? (usage operations only: encrypt, decrypt, sign, ...)
CREATE VIEW usage_daily AS
SELECT key_uri,
       CAST(date_trunc('day', time AT TIME ZONE 'UTC') AS DATE) AS day,
       op,
       count(*)                                   AS events,
       count(*) FILTER (WHERE NOT success)        AS failures,
       count(DISTINCT actor_principal)            AS principals
FROM events
WHERE is_usage AND key_uri IS NOT NULL
GROUP BY ALL;

-- Who touched each key, how often, and when first and last?
CREATE VIEW key_principals AS
SELECT key_uri,
       actor_principal,
       any_value(actor_type)                      AS actor_type,
       count(*)                                   AS events,
       count(*) FILTER (WHERE is_usage)           AS usage_events,
       count(*) FILTER (WHERE NOT success)        AS failures,
       min(time)                                  AS first_seen,
       max(time)                                  AS last_seen,
       list(DISTINCT op ORDER BY op)              AS ops
FROM events
WHERE key_uri IS NOT NULL
GROUP BY key_uri, actor_principal;

-- When was each key last used, and last touched at all? (silence here is only meaningful where the
-- source is known to log usage: see coverage, issue 3)
CREATE VIEW key_last_use AS
SELECT key_uri,
       any_value(provider)                                        AS provider,
       max(time) FILTER (WHERE is_usage AND success)              AS last_use,
       max(time)                                                  AS last_event,
       count(*) FILTER (WHERE is_usage)                           AS usage_events,
       count(*)                                                   AS events,
       arg_max(op, time) FILTER (WHERE NOT is_usage)              AS last_lifecycle_op
FROM events
WHERE key_uri IS NOT NULL
GROUP BY key_uri;
