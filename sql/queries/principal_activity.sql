-- name: principal_activity
-- answers: Everything one principal did in a window, across every key manager, with the findings about them (forensics).
-- param: principal text the principal as kmo normalises it (ARN, email, Vault entity or token accessor, HSM user)
-- param: since timestamp start of the window (inclusive)
-- param: until timestamp end of the window (exclusive)
-- example: principal=arn:aws:iam::111111111111:role/payments-api since=2026-11-01T00:00:00Z until=2027-01-01T00:00:00Z
SELECT time, 'event' AS kind, source, op AS what, key_uri AS key, success, error_code AS detail, src_ip
FROM events
WHERE actor_principal = $principal
  AND time >= CAST($since AS TIMESTAMPTZ) AND time < CAST($until AS TIMESTAMPTZ)
UNION ALL
SELECT last_seen, 'finding', rule_id, severity, keys[1], NULL, message, NULL
FROM findings
WHERE actor = $principal
  AND last_seen >= CAST($since AS TIMESTAMPTZ) AND first_seen < CAST($until AS TIMESTAMPTZ)
ORDER BY time, kind;
