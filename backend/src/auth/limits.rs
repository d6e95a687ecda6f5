//! Failed-login throttling, kept in SQLite so a restart does not reset it.
//!
//! - Per name tried: after [`MAX_CONSECUTIVE_FAILURES`] failures in a row the name
//!   is locked for [`LOCKOUT`]; while locked, every attempt (the right password
//!   included) gets 429 with `Retry-After`. A success resets the count. Names are
//!   counted whether or not an account has them, so a lockout says nothing about
//!   which accounts exist; they are stored as SHA-256 of the lower-cased name.
//! - Per client address: [`MAX_ADDRESS_FAILURES`] failures within [`ADDRESS_WINDOW`]
//!   and the address gets 429 until the oldest of them leaves the window.

use std::net::IpAddr;
use std::time::Duration;

use sqlx::SqliteConnection;

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

/// `Err(Throttled)` if the address or the name may not try now.
pub async fn check(
    conn: &mut SqliteConnection,
    now_ms: i64,
    name: &str,
    address: Option<IpAddr>,
) -> Result<(), AuthError> {
    if let Some(address) = address {
        let since = now_ms - ms(ADDRESS_WINDOW);
        let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(at) FROM login_address_failure WHERE address = ? AND at > ?",
        )
        .bind(address.to_string())
        .bind(since)
        .fetch_one(&mut *conn)
        .await?;
        if count >= MAX_ADDRESS_FAILURES {
            let until = oldest.unwrap_or(now_ms) + ms(ADDRESS_WINDOW);
            return Err(AuthError::Throttled {
                retry_after_secs: secs_until(now_ms, until),
            });
        }
    }
    let locked_until: Option<i64> =
        sqlx::query_scalar("SELECT locked_until FROM login_account WHERE name_sha256 = ?")
            .bind(name_key(name))
            .fetch_optional(&mut *conn)
            .await?;
    match locked_until {
        Some(until) if until > now_ms => Err(AuthError::Throttled {
            retry_after_secs: secs_until(now_ms, until),
        }),
        _ => Ok(()),
    }
}

/// Counts a failure for `name` and `address`. Returns whether it locked the name.
pub async fn record_failure(
    conn: &mut SqliteConnection,
    now_ms: i64,
    name: &str,
    address: Option<IpAddr>,
) -> Result<bool, sqlx::Error> {
    if let Some(address) = address {
        sqlx::query("DELETE FROM login_address_failure WHERE at <= ?")
            .bind(now_ms - ms(ADDRESS_WINDOW))
            .execute(&mut *conn)
            .await?;
        sqlx::query("INSERT INTO login_address_failure (address, at) VALUES (?, ?)")
            .bind(address.to_string())
            .bind(now_ms)
            .execute(&mut *conn)
            .await?;
    }
    // A lock that has run out starts a fresh count.
    let failures: i64 = sqlx::query_scalar(
        "INSERT INTO login_account (name_sha256, failures, locked_until) VALUES (?1, 1, 0)
         ON CONFLICT (name_sha256) DO UPDATE SET
             failures = CASE WHEN locked_until > 0 AND locked_until <= ?2 THEN 1 ELSE failures + 1 END,
             locked_until = CASE WHEN locked_until <= ?2 THEN 0 ELSE locked_until END
         RETURNING failures",
    )
    .bind(name_key(name))
    .bind(now_ms)
    .fetch_one(&mut *conn)
    .await?;
    if failures >= MAX_CONSECUTIVE_FAILURES {
        sqlx::query(
            "UPDATE login_account SET failures = 0, locked_until = ? WHERE name_sha256 = ?",
        )
        .bind(now_ms + ms(LOCKOUT))
        .bind(name_key(name))
        .execute(&mut *conn)
        .await?;
        return Ok(true);
    }
    Ok(false)
}

/// A success: the name's count starts again.
pub async fn record_success(conn: &mut SqliteConnection, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_account WHERE name_sha256 = ?")
        .bind(name_key(name))
        .execute(&mut *conn)
        .await?;
    Ok(())
}
