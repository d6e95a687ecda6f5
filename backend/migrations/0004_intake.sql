-- Submitted intakes and the outbox that delivers them to the EMR.
--
-- An intake is accepted in one transaction with its outbox message: once the
-- patient has heard "received", the delivery is on disk and survives a crash.
CREATE TABLE intake (
    id              TEXT PRIMARY KEY,
    -- The client's Idempotency-Key: a retry gets the first answer back.
    idempotency_key TEXT NOT NULL UNIQUE,
    -- SHA-256 of the body, so a key reused for other content is refused.
    body_sha256     TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    questionnaire   TEXT NOT NULL,
    -- linked | review | created
    outcome         TEXT NOT NULL CHECK (outcome IN ('linked', 'review', 'created')),
    -- `Patient/{id}` once known (linked: at once; created: once delivered).
    patient         TEXT,
    -- accepted (delivery pending) | delivered | review (waiting for staff) | dead
    status          TEXT NOT NULL CHECK (status IN ('accepted', 'delivered', 'review', 'dead')),
    -- The QuestionnaireResponse as accepted (FHIR JSON), until delivered or decided.
    response        TEXT NOT NULL,
    -- The match: candidates, grades and explanations (JSON), for the review screen.
    match_result    TEXT NOT NULL
) STRICT;

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    intake_id       TEXT NOT NULL REFERENCES intake (id),
    -- The transaction Bundle to send (FHIR JSON).
    payload         TEXT NOT NULL,
    -- pending | delivered | dead
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- Unix milliseconds: not before.
    next_attempt_at INTEGER NOT NULL,
    -- Why the last attempt failed (status and issue codes; never patient data).
    last_error      TEXT,
    delivered_at    TEXT,
    -- What the EMR answered: each entry's location.
    result          TEXT
) STRICT;

CREATE INDEX outbox_due ON outbox (state, next_attempt_at, id);
CREATE INDEX outbox_by_intake ON outbox (intake_id);
