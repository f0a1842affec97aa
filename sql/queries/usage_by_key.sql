-- name: usage_by_key
-- answers: How often was each key used in a window, per version, principal and day (usage operations only)?
-- param: since timestamp start of the window (inclusive)
-- param: until timestamp end of the window (exclusive)
-- example: since=2026-11-01T00:00:00Z until=2027-01-01T00:00:00Z
-- The window's whole UTC days come from usage_rollup (kept by the sink with the events: migration
-- 007), the partial days at its two ends from events, so a window of months reads the rollup's
-- thousands of rows, not millions of events (bench/README.md has the times). Days are counted from
-- the epoch (integer arithmetic, no time zone conversion per row, the session's zone plays no part):
-- whole days are [lo, hi), lo = ceil(since / 1 day), hi = max(floor(until / 1 day), lo); the head is
-- [since, lo) clipped to until, the tail [hi, until) clipped to since. The bounds are written out
-- in each branch (constants once bound) so that DuckDB prunes the scan of events by time.
WITH per_op AS (
    SELECT day,
           key_uri,
           key_version,
           actor_principal,
           op,
           events,
           failures
    FROM usage_rollup
    WHERE day >= DATE '1970-01-01' + CAST(ceil(epoch(CAST($since AS TIMESTAMPTZ)) / 86400) AS INTEGER)
      AND day <  DATE '1970-01-01' + greatest(CAST(floor(epoch(CAST($until AS TIMESTAMPTZ)) / 86400) AS INTEGER),
                                              CAST(ceil(epoch(CAST($since AS TIMESTAMPTZ)) / 86400) AS INTEGER))
    UNION ALL
    SELECT DATE '1970-01-01' + CAST(fdiv(epoch_us(time), 86400000000) AS INTEGER) AS day,
           key_uri,
           key_version,
           actor_principal,
           op,
           count(*),
           count(*) FILTER (WHERE NOT success)
    FROM events
    WHERE is_usage AND key_uri IS NOT NULL
      AND ((time >= CAST($since AS TIMESTAMPTZ)
            AND time < least(CAST($until AS TIMESTAMPTZ),
                             to_timestamp(86400 * ceil(epoch(CAST($since AS TIMESTAMPTZ)) / 86400))))
        OR (time >= greatest(CAST($since AS TIMESTAMPTZ),
                             to_timestamp(86400 * greatest(floor(epoch(CAST($until AS TIMESTAMPTZ)) / 86400),
                                                           ceil(epoch(CAST($since AS TIMESTAMPTZ)) / 86400))))
            AND time < CAST($until AS TIMESTAMPTZ)))
    GROUP BY ALL
)
SELECT key_uri,
       key_version,
       actor_principal,
       day,
       CAST(sum(events) AS BIGINT)   AS events,
       CAST(sum(failures) AS BIGINT) AS failures,
       list(op ORDER BY op)          AS ops
FROM per_op
GROUP BY key_uri, key_version, actor_principal, day
ORDER BY day, key_uri, key_version NULLS FIRST, actor_principal NULLS FIRST;
