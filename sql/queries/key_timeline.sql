-- name: key_timeline
-- answers: One key's whole story across sources: its events in every key manager's log, the findings that name it, and what kmo did to it.
-- param: key text the key's canonical uri
-- example: key=vault:transit/keys/payments
SELECT time, 'event' AS kind, source, op AS what, actor_principal AS who, success AS ok, key_version AS detail
FROM events
WHERE key_uri = $key OR list_contains(related_keys, $key)
UNION ALL
SELECT first_seen, 'finding', rule_id, severity, actor, NULL, message
FROM findings
WHERE list_contains(keys, $key)
UNION ALL
SELECT time, 'kmo action', system, operation, actor, outcome = 'succeeded', outcome
FROM actions
WHERE key_id = $key
ORDER BY time, kind;
