-- Staff accounts, their sessions, system tokens, login throttling, and the audit trail.
--
-- Secrets are never stored as sent: passwords as argon2id PHC strings, session ids
-- and tokens as SHA-256 (they are 256 random bits, so a fast hash is enough), and
-- the names tried at login as SHA-256 too (a password typed in the name field must
-- not land on disk).

CREATE TABLE staff_user (
    id            INTEGER PRIMARY KEY,
    -- Lower-case ASCII (`auth::Username`); NOCASE keeps it unique whatever the case.
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    -- argon2id, PHC string format (algorithm, parameters and salt included).
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('front-desk', 'clinician', 'admin')),
    created_at    TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
) STRICT;

CREATE TABLE staff_session (
    -- SHA-256 (hex) of the cookie's value.
    id_sha256    TEXT PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES staff_user (id) ON DELETE CASCADE,
    -- Sent back in X-CSRF-Token by every state-changing request.
    csrf         TEXT NOT NULL,
    -- Unix milliseconds.
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
) STRICT;

CREATE INDEX staff_session_by_user ON staff_session (user_id);

CREATE TABLE api_token (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL CHECK (role IN ('system', 'admin')),
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
) STRICT;

-- A name is unique among live tokens; a revoked one stays for the audit trail.
CREATE UNIQUE INDEX api_token_live_name ON api_token (name COLLATE NOCASE)
    WHERE revoked_at IS NULL;

-- Consecutive failed logins per name tried (existing or not, so a lockout says
-- nothing about whether an account exists).
CREATE TABLE login_account (
    name_sha256  TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    -- Unix milliseconds; 0 when not locked.
    locked_until INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Failed logins per client address, one row each, kept for the window.
CREATE TABLE login_address_failure (
    address TEXT NOT NULL,
    -- Unix milliseconds.
    at      INTEGER NOT NULL
) STRICT;

CREATE INDEX login_address_failure_by_address ON login_address_failure (address, at);

-- The audit trail: FHIR R4 AuditEvents, append-only, each row chained to the one
-- before by `hash` = SHA-256(prev_hash || canonical JSON of `event`).
CREATE TABLE audit_event (
    seq       INTEGER PRIMARY KEY,
    -- The event's `recorded`, for search by date.
    recorded  TEXT NOT NULL,
    -- The agent's name (user or token), when known, for search by agent.
    agent     TEXT,
    -- The first `Patient/…` entity, when there is one, for search by patient.
    patient   TEXT,
    -- The AuditEvent, canonical JSON (object keys sorted).
    event     TEXT NOT NULL,
    -- Hex; 64 zeros for the first row. UNIQUE: the chain cannot fork.
    prev_hash TEXT NOT NULL UNIQUE,
    hash      TEXT NOT NULL
) STRICT;

CREATE INDEX audit_event_by_agent ON audit_event (agent, recorded);
CREATE INDEX audit_event_by_patient ON audit_event (patient, recorded);
CREATE INDEX audit_event_by_recorded ON audit_event (recorded);

CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
BEGIN
    SELECT RAISE(ABORT, 'audit_event is append-only');
END;

CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
BEGIN
    SELECT RAISE(ABORT, 'audit_event is append-only');
END;
