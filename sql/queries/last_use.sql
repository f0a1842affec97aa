-- name: last_use
-- answers: When was each key last used, and last touched at all? Inventoried keys never seen in any log appear with no use.
SELECT coalesce(i.key_id, u.key_uri)  AS key_id,
       coalesce(i.system, u.provider) AS system,
       i.status,
       u.last_use,
       u.last_event,
       coalesce(u.usage_events, 0)    AS usage_events,
       u.last_lifecycle_op
FROM inventory_latest i
FULL OUTER JOIN key_last_use u ON u.key_uri = i.key_id
ORDER BY u.last_use NULLS FIRST, key_id;
