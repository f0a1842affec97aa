-- name: audit_violations
-- answers: Which policy-violation findings were open during a period (first seen before its end, last seen at or after its start)?
-- param: start timestamp start of the period (inclusive)
-- param: end timestamp end of the period (exclusive)
-- example: start=2026-11-01T00:00:00Z end=2026-12-31T00:00:00Z
SELECT uid, rule_id, severity, first_seen, last_seen, count, keys, actor, message
FROM findings
WHERE finding_type = 'policy-violation'
  AND first_seen < CAST($end AS TIMESTAMPTZ) AND last_seen >= CAST($start AS TIMESTAMPTZ)
ORDER BY severity_id DESC, first_seen;
