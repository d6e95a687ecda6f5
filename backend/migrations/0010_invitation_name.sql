-- Whom an invitation is for, as the staff list shows it: the chart's name when
-- it was created (as a FHIR Reference.display would), or the name the front desk
-- typed for a patient the clinic does not know yet.
ALTER TABLE invitation ADD COLUMN patient_name TEXT;
