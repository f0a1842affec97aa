-- 008_events_without_uid_index: `events` as 001 made it, without the PRIMARY KEY on `uid`.
--
-- Why: DuckDB holds a key's index (an ART) in memory, and must load all of it to check a conflict.
-- Over the benchmark's corpus (uids of 68 characters) the sink, capped at 512 MB as it runs
-- (KMO_WAREHOUSE_MEMORY_MB), failed every insert with "Out of Memory" once the warehouse held 3.4
-- million events, and at 1 GB one batch took 1-6 s (bench/README.md): the sink's memory grew with
-- the whole history. Duplicates are now kept out as the sink inserts
-- (analytics.warehouse.insert_events): a batch's rows whose uid is already in `events` among the
-- events of the batch's own time span (widened by a minute) are skipped. The same record always
-- carries the same time, so that span holds any copy of it already written; DuckDB prunes the scan
-- to the row groups whose times overlap it, and memory stays bounded however large the warehouse.
-- The rows are copied as they are (a warehouse of many millions takes minutes, once).
CREATE TABLE events_without_uid_index (
    uid               VARCHAR NOT NULL,
    time              TIMESTAMPTZ NOT NULL,
    source            VARCHAR NOT NULL,
    provider          VARCHAR NOT NULL,
    class_uid         INTEGER NOT NULL,
    activity_id       INTEGER NOT NULL,
    type_uid          BIGINT NOT NULL,
    op                VARCHAR NOT NULL,
    operation         VARCHAR NOT NULL,
    is_usage          BOOLEAN NOT NULL,
    success           BOOLEAN NOT NULL,
    error_code        VARCHAR,
    error_message     VARCHAR,
    key_uri           VARCHAR,
    key_version       VARCHAR,
    key_alias         VARCHAR,
    related_keys      VARCHAR[],
    actor_principal   VARCHAR,
    actor_type        VARCHAR,
    actor_name        VARCHAR,
    actor_account     VARCHAR,
    actor_invoked_by  VARCHAR,
    src_ip            VARCHAR,
    user_agent        VARCHAR,
    region            VARCHAR,
    account           VARCHAR,
    service           VARCHAR,
    provider_event_id VARCHAR,
    request_id        VARCHAR,
    context_keys      VARCHAR[],
    details           JSON,
    origin            VARCHAR,
    raw_data          VARCHAR,
    ingested_at       TIMESTAMPTZ NOT NULL,
    kafka_partition   INTEGER,
    kafka_offset      BIGINT
);

INSERT INTO events_without_uid_index SELECT * FROM events;
DROP TABLE events;  -- the views over it (002, 003) name it, and read the new table once renamed
ALTER TABLE events_without_uid_index RENAME TO events;
