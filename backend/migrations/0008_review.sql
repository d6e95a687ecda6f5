-- The match-resolution screen (`review.rs`): what a decision needs that the
-- intake row did not keep.
--
-- An intake waiting for staff (review, or not delivered yet, or with a Task) keeps
-- the Patient extracted from it and who sent it, so a decision can deliver it
-- ("create": the new chart; "link": the Provenance's author). NULL for an intake
-- delivered with its accept and needing no one.
ALTER TABLE intake ADD COLUMN extracted TEXT;
ALTER TABLE intake ADD COLUMN device TEXT;
