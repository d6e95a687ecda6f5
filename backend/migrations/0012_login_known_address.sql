-- Issue 21: anyone can lock a known login name with five wrong passwords. The
-- addresses a name has signed in from before keep their own count, so such a
-- lockout does not keep the front desk out.
CREATE TABLE login_known_address (
    name_sha256 TEXT NOT NULL,
    address     TEXT NOT NULL,
    -- Unix milliseconds of the last successful sign-in from there.
    at          INTEGER NOT NULL,
    PRIMARY KEY (name_sha256, address)
) STRICT;
