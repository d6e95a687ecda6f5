-- Issue 21: rows from now on are chained by a keyed MAC (HMAC-SHA-256 with a key
-- kept outside the database: `audit.key` in the data folder, or
-- INTAKE_AUDIT_KEY) over every stored column, instead of a plain SHA-256 anyone
-- could recompute. Rows written before stay as they were (keyed = 0).
ALTER TABLE audit_event ADD COLUMN keyed INTEGER NOT NULL DEFAULT 0;
