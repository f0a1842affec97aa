-- 006_findings: detection findings (OCSF 2004) from kmo.findings.v1, one row per finding uid in its
-- latest state: the worker re-publishes a growing finding under the same uid, and the sink keeps
-- the version with the highest count (a replayed older state never overwrites a newer one).
CREATE TABLE findings (
    uid           VARCHAR PRIMARY KEY,
    rule_id       VARCHAR NOT NULL,
    title         VARCHAR,
    finding_type  VARCHAR,          -- anomalous-usage | orphaned-key | policy-violation
    severity_id   INTEGER,
    severity      VARCHAR,
    action        VARCHAR,          -- the recommended action: rotate, disable, investigate, ...
    message       VARCHAR,
    actor         VARCHAR,
    keys          VARCHAR[],
    first_seen    TIMESTAMPTZ,
    last_seen     TIMESTAMPTZ,
    count         BIGINT,
    evidence      VARCHAR[],        -- event uids
    doc           JSON NOT NULL,
    received_at   TIMESTAMPTZ NOT NULL
);
