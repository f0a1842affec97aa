-- 003_coverage: collector heartbeats, so "no events" can be told apart from "no data".
CREATE TABLE coverage (
    uid              VARCHAR PRIMARY KEY,
    time             TIMESTAMPTZ NOT NULL,
    source           VARCHAR NOT NULL,
    collector        VARCHAR NOT NULL,
    status           VARCHAR NOT NULL,   -- ok | idle | degraded | failing
    inputs           INTEGER,
    records          BIGINT,
    events           BIGINT,
    skipped          BIGINT,
    dead_lettered    BIGINT,
    last_event_time  TIMESTAMPTZ,
    lag_seconds      DOUBLE,
    detail           JSON
);

-- Per source: when it was last read, how it went, and how old its newest event was then.
CREATE VIEW source_health AS
SELECT source,
       max(time)                                       AS last_heartbeat,
       arg_max(status, time)                           AS last_status,
       arg_max(lag_seconds, time)                      AS last_lag_seconds,
       max(last_event_time)                            AS last_event_time,
       sum(events)                                     AS events_reported,
       count(*) FILTER (WHERE status IN ('degraded', 'failing')) AS unhealthy_passes
FROM coverage
GROUP BY source;
