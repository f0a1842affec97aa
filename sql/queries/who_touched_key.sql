-- name: who_touched_key
-- answers: Who touched one key, how often, with which operations, first and last?
-- param: key text the key's canonical uri
-- example: key=vault:transit/keys/payments
SELECT actor_principal, actor_type, events, usage_events, failures, first_seen, last_seen, ops
FROM key_principals
WHERE key_uri = $key
ORDER BY events DESC, actor_principal;
