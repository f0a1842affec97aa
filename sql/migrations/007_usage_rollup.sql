-- 007_usage_rollup: usage events counted per UTC day, key, version, principal and operation, so that
-- "how often was each key used" over months reads the rollup's rows, not every event (issue #8: the
-- saved query usage_by_key took 634 ms over 10 million events from `events` alone). The sink adds
-- each batch's new events (those its insert did not find already there) in the transaction that
-- inserts them (analytics.warehouse.insert_events), so the counts are exactly `events`' own, however
-- often a batch is redelivered. No primary key, on purpose: DuckDB keeps a key's index in memory,
-- and this table grows with the estate (migration 008 says why that matters); the sink merges
-- into the days a batch touches instead.
CREATE TABLE usage_rollup (
    day              DATE    NOT NULL,  -- the UTC day, from the epoch (the session's zone plays no part)
    key_uri          VARCHAR NOT NULL,
    key_version      VARCHAR,
    actor_principal  VARCHAR,
    op               VARCHAR NOT NULL,
    events           BIGINT  NOT NULL,
    failures         BIGINT  NOT NULL
);

-- The one definition of a rollup row, over any relation with the events' columns (the table itself
-- when it is rebuilt, a batch's inserted rows as the sink writes).
CREATE MACRO usage_rollup_rows(src) AS TABLE
    SELECT DATE '1970-01-01' + CAST(fdiv(epoch_us(time), 86400000000) AS INTEGER) AS day,
           key_uri,
           key_version,
           actor_principal,
           op,
           count(*)                            AS events,
           count(*) FILTER (WHERE NOT success) AS failures
    FROM query_table(src)
    WHERE is_usage AND key_uri IS NOT NULL
    GROUP BY ALL;

-- a warehouse that already holds events
INSERT INTO usage_rollup SELECT * FROM usage_rollup_rows('events');

-- 002's analyst view, the same columns, now read from the rollup
CREATE OR REPLACE VIEW usage_daily AS
SELECT key_uri,
       day,
       op,
       CAST(sum(events) AS BIGINT)     AS events,
       CAST(sum(failures) AS BIGINT)   AS failures,
       count(DISTINCT actor_principal) AS principals
FROM usage_rollup
GROUP BY key_uri, day, op;
