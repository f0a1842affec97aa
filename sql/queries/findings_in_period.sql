-- name: findings_in_period
-- answers: Which findings were open during a period (first seen before its end, last seen at or after its start), of every type?
-- param: start timestamp start of the period (inclusive)
-- param: end timestamp end of the period (exclusive)
-- example: start=2026-11-01T00:00:00Z end=2026-12-31T00:00:00Z
SELECT uid, rule_id, finding_type, severity, severity_id, first_seen, last_seen, count, keys, actor, message
FROM findings
WHERE first_seen < CAST($end AS TIMESTAMPTZ) AND last_seen >= CAST($start AS TIMESTAMPTZ)
ORDER BY severity_id DESC, first_seen, uid;
