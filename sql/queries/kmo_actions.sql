-- name: kmo_actions
-- answers: What did kmo itself do in a period (generations, rotations, destructions, ceremonies, audits), who asked, and how did it end?
-- param: start timestamp start of the period (inclusive)
-- param: end timestamp end of the period (exclusive)
-- example: start=2026-11-01T00:00:00Z end=2026-12-31T00:00:00Z
SELECT time, operation, outcome, actor, system, key_id, operation_id, trigger, entry
FROM actions
WHERE time >= CAST($start AS TIMESTAMPTZ) AND time < CAST($end AS TIMESTAMPTZ)
ORDER BY time, seq;
