-- name: findings_summary
-- answers: Which rules fired since a time, how severe, how often, on how many keys?
-- param: since timestamp findings last seen at or after this time
-- example: since=2026-11-01T00:00:00Z
SELECT rule_id,
       finding_type,
       severity,
       count(*)                          AS findings,
       sum(count)                        AS occurrences,
       len(list_distinct(flatten(list(keys)))) AS keys,
       min(first_seen)                   AS first_seen,
       max(last_seen)                    AS last_seen
FROM findings
WHERE last_seen >= CAST($since AS TIMESTAMPTZ)
GROUP BY rule_id, finding_type, severity
ORDER BY max(severity_id) DESC, findings DESC, rule_id;
