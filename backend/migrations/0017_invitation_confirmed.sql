-- When the patient first confirmed the invitation's birth date (unix ms). Until
-- then the link opens on any device (a second phone, a messaging app's link
-- preview opening it first); from then on only the confirmed device goes on.
ALTER TABLE invitation ADD COLUMN confirmed_at INTEGER;
