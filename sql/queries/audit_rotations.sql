-- name: audit_rotations
-- answers: Which rotations were completed in a period: those the key managers logged, and those only kmo recorded (no provider event for the key within ten minutes)?
-- param: start timestamp start of the period (inclusive)
-- param: end timestamp end of the period (exclusive)
-- example: start=2026-11-01T00:00:00Z end=2026-12-31T00:00:00Z
SELECT time, key_uri AS key_id, 'provider log' AS recorded_by, source, actor_principal AS who
FROM events
WHERE op = 'rotate' AND success AND key_uri IS NOT NULL
  AND time >= CAST($start AS TIMESTAMPTZ) AND time < CAST($end AS TIMESTAMPTZ)
UNION ALL
SELECT a.time, a.key_id, 'kmo', a.system, a.actor
FROM actions a
WHERE a.operation IN ('rotate', 'coordinated-rotate') AND a.outcome = 'succeeded'
  AND a.time >= CAST($start AS TIMESTAMPTZ) AND a.time < CAST($end AS TIMESTAMPTZ)
  AND NOT EXISTS (
      SELECT 1 FROM events e
      WHERE e.op = 'rotate' AND e.success AND e.key_uri = a.key_id
        AND e.time BETWEEN a.time - INTERVAL 10 MINUTE AND a.time + INTERVAL 10 MINUTE
  )
ORDER BY time;
