-- 005_inventory: what every key manager said it held, snapshot by snapshot (kmo inventory --publish),
-- so "what did the estate look like on day D" is a query. `uid` is the snapshot id and key id hashed:
-- a re-published snapshot is a no-op.
CREATE TABLE inventory_snapshots (
    uid            VARCHAR PRIMARY KEY,
    snapshot_id    VARCHAR NOT NULL,
    taken_at       TIMESTAMPTZ NOT NULL,
    system         VARCHAR NOT NULL,
    key_id         VARCHAR NOT NULL,
    status         VARCHAR,          -- the specification's status enum
    state          VARCHAR,          -- NIST SP 800-57 state
    version        INTEGER,
    algorithm      VARCHAR,
    key_size       INTEGER,
    created_at     TIMESTAMPTZ,
    current_since  TIMESTAMPTZ,      -- when the current version was made: what rotation age is measured from
    destroy_at     TIMESTAMPTZ,
    doc            JSON NOT NULL     -- the keyInfo as published (no key material: kmo never has it)
);

-- Each key as its most recent snapshot showed it.
CREATE VIEW inventory_latest AS
SELECT * EXCLUDE (rn) FROM (
    SELECT *, row_number() OVER (PARTITION BY system, key_id ORDER BY taken_at DESC, uid) AS rn
    FROM inventory_snapshots
) WHERE rn = 1;
