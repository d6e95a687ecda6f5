-- Search parameters of stored resources (current versions only): one row per value.
-- Strings are folded (lower case, no accents, single spaces); tokens keep their
-- system apart so `identifier=value` and `identifier=system|value` both work.
CREATE TABLE search_index (
    resource_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    system        TEXT,
    value         TEXT NOT NULL
) STRICT;

CREATE INDEX search_index_by_value ON search_index (resource_type, name, value);
CREATE INDEX search_index_by_resource ON search_index (resource_type, id);
