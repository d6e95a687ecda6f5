-- Kiosks: front-desk devices registered by an admin, each showing the forms
-- assigned to it.
--
-- A kiosk is created with a one-time enrolment code (140 random bits, stored as
-- SHA-256, NULL once used) that expires; the browser that presents it gets a
-- device secret in the `__Host-intake-kiosk` cookie (256 random bits, stored as
-- SHA-256). A revoked kiosk keeps its row for the audit trail.

CREATE TABLE kiosk (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL,
    -- Seconds without input before the kiosk warns, then the seconds of the
    -- warning's countdown before it wipes the form.
    idle_seconds    INTEGER NOT NULL DEFAULT 60 CHECK (idle_seconds BETWEEN 1 AND 3600),
    warn_seconds    INTEGER NOT NULL DEFAULT 20 CHECK (warn_seconds BETWEEN 1 AND 600),
    created_at      TEXT NOT NULL,
    -- SHA-256 (hex) of the enrolment code; NULL once used.
    code_sha256     TEXT UNIQUE,
    -- Unix milliseconds.
    code_expires_at INTEGER NOT NULL,
    -- SHA-256 (hex) of the device secret; NULL until enrolled.
    device_sha256   TEXT UNIQUE,
    enrolled_at     TEXT,
    revoked_at      TEXT
) STRICT;

-- A name is unique among live kiosks: it is what Provenance and the audit trail show.
CREATE UNIQUE INDEX kiosk_live_name ON kiosk (name COLLATE NOCASE) WHERE revoked_at IS NULL;

-- The Questionnaires a kiosk shows, in order.
CREATE TABLE kiosk_form (
    kiosk_id         INTEGER NOT NULL REFERENCES kiosk (id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,
    questionnaire_id TEXT NOT NULL,
    PRIMARY KEY (kiosk_id, position)
) STRICT;
