-- 004_actions: the orchestrator's own audit trail (actions/audit_log.py), shipped through the
-- actions topic. `hash` is the entry's chained SHA-256, so a re-shipped entry is a no-op.
CREATE TABLE actions (
    hash          VARCHAR PRIMARY KEY,
    seq           BIGINT NOT NULL,
    time          TIMESTAMPTZ NOT NULL,
    operation     VARCHAR,
    outcome       VARCHAR,
    actor         VARCHAR,
    system        VARCHAR,
    key_id        VARCHAR,
    operation_id  VARCHAR,
    trigger       VARCHAR,   -- the finding uid, for the responder's actions
    entry         JSON NOT NULL
);
