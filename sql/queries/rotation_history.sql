-- name: rotation_history
-- answers: Every rotation of one key, from the key managers' logs and from kmo's own audit trail.
-- param: key text the key's canonical uri (ARN, cryptoKey name, vault:..., Azure key id, pkcs11:...)
-- example: key=vault:transit/keys/payments
SELECT time, 'provider log' AS recorded_by, source, op AS what, actor_principal AS who, key_version AS version,
       success
FROM events
WHERE key_uri = $key AND op IN ('rotate', 'rotation_config')
UNION ALL
SELECT time, 'kmo', system, operation, actor, CAST(entry->>'$.version' AS VARCHAR), outcome = 'succeeded'
FROM actions
WHERE key_id = $key AND operation IN ('rotate', 'coordinated-rotate') AND outcome IN ('succeeded', 'failed')
ORDER BY time;
