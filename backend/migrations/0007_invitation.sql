-- Patient invitations: a link to one form, sent by the front desk, opened once on
-- the patient's phone and exchanged for a short-lived cookie session.
--
-- Secrets are stored only as SHA-256: the link's token (256 random bits) and the
-- cookie's value. The birth date the patient must confirm is kept as typed (from
-- the chart, or from the front desk for a patient the clinic does not know yet).

CREATE TABLE invitation (
    id            TEXT PRIMARY KEY,
    token_sha256  TEXT NOT NULL UNIQUE,
    -- The invited patient's id, when the clinic knows them.
    patient       TEXT,
    -- The Questionnaire's id.
    questionnaire TEXT NOT NULL,
    -- FHIR dateTime, as the front desk gave it.
    appointment   TEXT,
    -- YYYY-MM-DD.
    birth_date    TEXT NOT NULL,
    -- The username or token name that created it.
    created_by    TEXT NOT NULL,
    -- Unix milliseconds, as every *_at below.
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    -- The token was exchanged (it cannot be again).
    opened_at     INTEGER,
    -- Wrong birth dates so far; the invitation locks at five.
    failures      INTEGER NOT NULL DEFAULT 0,
    locked_at     INTEGER,
    used_at       INTEGER,
    cancelled_at  INTEGER,
    -- The intake sent with it.
    intake        TEXT
) STRICT;

CREATE INDEX invitation_by_created ON invitation (created_at);

CREATE TABLE invitation_session (
    -- SHA-256 (hex) of the `__Host-intake-invite` cookie's value.
    id_sha256     TEXT PRIMARY KEY,
    invitation_id TEXT NOT NULL REFERENCES invitation (id) ON DELETE CASCADE,
    -- 1 once the birth date was confirmed with this cookie.
    confirmed     INTEGER NOT NULL DEFAULT 0 CHECK (confirmed IN (0, 1)),
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
) STRICT;

CREATE INDEX invitation_session_by_invitation ON invitation_session (invitation_id);
