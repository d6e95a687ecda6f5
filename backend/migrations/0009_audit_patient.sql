-- Every Patient an audit event names, so a search by patient finds an event that
-- touched several (a search's results, a match's candidates), not only the first.
CREATE TABLE audit_event_patient (
    seq INTEGER NOT NULL REFERENCES audit_event (seq),
    patient TEXT NOT NULL,
    PRIMARY KEY (patient, seq)
) WITHOUT ROWID;

CREATE TRIGGER audit_event_patient_no_update BEFORE UPDATE ON audit_event_patient
BEGIN
    SELECT RAISE(ABORT, 'audit_event_patient is append-only');
END;

CREATE TRIGGER audit_event_patient_no_delete BEFORE DELETE ON audit_event_patient
BEGIN
    SELECT RAISE(ABORT, 'audit_event_patient is append-only');
END;
