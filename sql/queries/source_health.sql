-- name: source_health
-- answers: Which audit sources (and HSMs) were heard from, when last, in what state, and how stale was their newest event?
SELECT source, last_heartbeat, last_status, last_lag_seconds, last_event_time, events_reported, unhealthy_passes
FROM source_health
ORDER BY source;
