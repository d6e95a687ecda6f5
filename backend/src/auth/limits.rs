//! Failed-login throttling, kept in SQLite so a restart does not reset it.
//!
//! - Per name tried: after [`MAX_CONSECUTIVE_FAILURES`] failures in a row the name
//!   is locked for [`LOCKOUT`]; while locked, every attempt (the right password
//!   included) gets 429 with `Retry-After`. A success resets the count. Names are
//!   counted whether or not an account has them, so a lockout says nothing about
//!   which accounts exist; they are stored as SHA-256 of the lower-cased name.
//! - Per client address: [`MAX_ADDRESS_FAILURES`] failures within [`ADDRESS_WINDOW`]
//!   and the address gets 429 until the oldest of them leaves the window.
//! - Atomic under concurrency (issue 21): [`begin`] checks and counts the attempt
//!   as a failure in one write transaction, before the password is verified; a
//!   success then takes it back ([`succeeded`]). A hundred simultaneous wrong
//!   passwords get at most [`MAX_CONSECUTIVE_FAILURES`] checked.
//! - The lockout-abuse escape: an address the name has signed in from before
//!   (within [`KNOWN_ADDRESS_AGE`]) keeps its own count for that name, so a
//!   stranger who locks the name from elsewhere does not lock out the front desk
//!   at its usual address; five failures from that address lock it there too.

use std::net::IpAddr;
use std::time::Duration;

use sqlx::{SqliteConnection, SqlitePool};

use super::{AuthError, sha256_hex};

/// Failures in a row that lock a name.
pub const MAX_CONSECUTIVE_FAILURES: i64 = 5;
/// How long a name stays locked.
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Failures from one address that refuse it.
pub const MAX_ADDRESS_FAILURES: i64 = 20;
/// The window those are counted in.
pub const ADDRESS_WINDOW: Duration = Duration::from_secs(15 * 60);

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn secs_until(now_ms: i64, until_ms: i64) -> u64 {
    u64::try_from((until_ms - now_ms).max(0))
        .unwrap_or(0)
        .div_ceil(1000)
}

/// How a tried name is keyed: SHA-256 of it in ASCII lower case.
pub fn name_key(name: &str) -> String {
    sha256_hex(&name.to_ascii_lowercase())
}

/// How long an address a name signed in from stays known to it.
pub const KNOWN_ADDRESS_AGE: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// An attempt counted by [`begin`]: settle it with [`succeeded`] or
/// [`failed`].
#[derive(Debug)]
pub struct Attempt {
    /// The `login_account` row counted: the name's, or the name's at a known
    /// address.
    key: String,
    /// The `login_address_failure` row counted, if the address is known.
    address_row: Option<i64>,
    /// Whether this attempt's failure locks the key (it was the last allowed).
    pub locks: bool,
}

/// Checks the limits and counts this attempt as a failure, in one write
/// transaction: `Throttled` with the seconds to wait, or the [`Attempt`].
pub async fn begin(
    db: &SqlitePool,
    now_ms: i64,
    name: &str,
    address: Option<IpAddr>,
) -> Result<Attempt, AuthError> {
    let mut tx = crate::db::begin_write(db).await?;
    if let Some(address) = address {
        let since = now_ms - ms(ADDRESS_WINDOW);
        let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(at) FROM login_address_failure WHERE address = ? AND at > ?",
        )
        .bind(address.to_string())
        .bind(since)
        .fetch_one(&mut *tx)
        .await?;
        if count >= MAX_ADDRESS_FAILURES {
            let until = oldest.unwrap_or(now_ms) + ms(ADDRESS_WINDOW);
            return Err(AuthError::Throttled {
                retry_after_secs: secs_until(now_ms, until),
            });
        }
    }
    let key = key_for(&mut tx, now_ms, name, address).await?;
    let locked_until: Option<i64> =
        sqlx::query_scalar("SELECT locked_until FROM login_account WHERE name_sha256 = ?")
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(until) = locked_until
        && until > now_ms
    {
        return Err(AuthError::Throttled {
            retry_after_secs: secs_until(now_ms, until),
        });
    }
    let (address_row, locks) = count_failure(&mut tx, now_ms, &key, address).await?;
    tx.commit().await?;
    Ok(Attempt {
        key,
        address_row,
        locks,
    })
}

/// The attempt failed: it was counted already. Whether it locked the name.
pub fn failed(attempt: &Attempt) -> bool {
    attempt.locks
}

/// The attempt succeeded: its failure is taken back, the name's count (at
/// this address, if known) starts again, and the address becomes known.
pub async fn succeeded(
    conn: &mut SqliteConnection,
    now_ms: i64,
    attempt: &Attempt,
    name: &str,
    address: Option<IpAddr>,
) -> Result<(), sqlx::Error> {
    if let Some(row) = attempt.address_row {
        sqlx::query("DELETE FROM login_address_failure WHERE rowid = ?")
            .bind(row)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("DELETE FROM login_account WHERE name_sha256 = ?")
        .bind(&attempt.key)
        .execute(&mut *conn)
        .await?;
    if let Some(address) = address {
        sqlx::query(
            "INSERT INTO login_known_address (name_sha256, address, at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name_sha256, address) DO UPDATE SET at = ?3",
        )
        .bind(name_key(name))
        .bind(address.to_string())
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The `login_account` key of `name` from `address`: its own at an address it
/// signed in from within [`KNOWN_ADDRESS_AGE`], else the name's.
async fn key_for(
    conn: &mut SqliteConnection,
    now_ms: i64,
    name: &str,
    address: Option<IpAddr>,
) -> Result<String, sqlx::Error> {
    let Some(address) = address else {
        return Ok(name_key(name));
    };
    let known: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM login_known_address
                        WHERE name_sha256 = ? AND address = ? AND at > ?)",
    )
    .bind(name_key(name))
    .bind(address.to_string())
    .bind(now_ms - ms(KNOWN_ADDRESS_AGE))
    .fetch_one(&mut *conn)
    .await?;
    Ok(if known {
        sha256_hex(&format!("{}\u{0}{address}", name.to_ascii_lowercase()))
    } else {
        name_key(name)
    })
}

/// Counts one failure for `key` and `address`: the address row's id, and
/// whether the key is now locked.
async fn count_failure(
    conn: &mut SqliteConnection,
    now_ms: i64,
    key: &str,
    address: Option<IpAddr>,
) -> Result<(Option<i64>, bool), sqlx::Error> {
    let mut address_row = None;
    if let Some(address) = address {
        sqlx::query("DELETE FROM login_address_failure WHERE at <= ?")
            .bind(now_ms - ms(ADDRESS_WINDOW))
            .execute(&mut *conn)
            .await?;
        let row: i64 = sqlx::query_scalar(
            "INSERT INTO login_address_failure (address, at) VALUES (?, ?) RETURNING rowid",
        )
        .bind(address.to_string())
        .bind(now_ms)
        .fetch_one(&mut *conn)
        .await?;
        address_row = Some(row);
    }
    // A lock that has run out starts a fresh count.
    let failures: i64 = sqlx::query_scalar(
        "INSERT INTO login_account (name_sha256, failures, locked_until) VALUES (?1, 1, 0)
         ON CONFLICT (name_sha256) DO UPDATE SET
             failures = CASE WHEN locked_until > 0 AND locked_until <= ?2 THEN 1 ELSE failures + 1 END,
             locked_until = CASE WHEN locked_until <= ?2 THEN 0 ELSE locked_until END
         RETURNING failures",
    )
    .bind(key)
    .bind(now_ms)
    .fetch_one(&mut *conn)
    .await?;
    if failures >= MAX_CONSECUTIVE_FAILURES {
        sqlx::query(
            "UPDATE login_account SET failures = 0, locked_until = ? WHERE name_sha256 = ?",
        )
        .bind(now_ms + ms(LOCKOUT))
        .bind(key)
        .execute(&mut *conn)
        .await?;
        return Ok((address_row, true));
    }
    Ok((address_row, false))
}
