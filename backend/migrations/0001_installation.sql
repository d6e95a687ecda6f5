-- One row: when this data directory was first set up, and a random identity for it
-- (later used to name this installation as the author device in Provenance).
CREATE TABLE installation (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    id          TEXT    NOT NULL,
    created_at  TEXT    NOT NULL
) STRICT;
