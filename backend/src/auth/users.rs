//! Staff accounts: argon2id password hashes, generated passwords, lookup at login.

use std::sync::LazyLock;
use std::time::SystemTime;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sqlx::{Row as _, SqlitePool};

use super::{AuthError, Principal, PrincipalKind, Role, Username, random_bytes};
use crate::clock::fhir_instant;

/// Length of a generated password. From an alphabet of 54 characters (no 0/O,
/// 1/l/I look-alikes), 24 characters are 138 bits.
pub const PASSWORD_LENGTH: usize = 24;
const PASSWORD_ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// argon2id with the `argon2` crate's recommended parameters (OWASP's: 19 MiB,
/// two passes, one lane). Hashes keep their own parameters, so raising these later
/// leaves older hashes verifiable.
fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// A PHC-format argon2id hash of `password` with a fresh 128-bit salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|_| AuthError::Internal("encoding a salt"))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| AuthError::Internal("hashing a password"))
}

/// Whether `password` matches `hash`. A malformed hash matches nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash no password is known for, verified against when the name tried does not
/// exist, so that answer takes as long as a wrong password for a real account.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let secret = super::random_secret().unwrap_or_else(|_| "unused".repeat(8));
    hash_password(&secret).unwrap_or_default()
});

/// Verifies `password` against `hash`, or against [`DUMMY_HASH`] when there is no
/// account (always false then), off the async threads: a verification is tens of
/// milliseconds of CPU.
pub async fn verify_or_dummy(password: String, hash: Option<String>) -> Result<bool, AuthError> {
    tokio::task::spawn_blocking(move || match hash {
        Some(hash) => verify_password(&password, &hash),
        None => {
            let _ = verify_password(&password, &DUMMY_HASH);
            false
        }
    })
    .await
    .map_err(|_| AuthError::Internal("password verification panicked"))
}

/// A new random password of [`PASSWORD_LENGTH`] characters.
pub fn generate_password() -> Result<String, AuthError> {
    let mut out = String::with_capacity(PASSWORD_LENGTH);
    // Rejection sampling: bytes at or above the largest multiple of the alphabet's
    // size are drawn again, so every character is equally likely.
    let n = PASSWORD_ALPHABET.len();
    let limit = 256 - 256 % n;
    while out.len() < PASSWORD_LENGTH {
        for b in random_bytes::<32>()? {
            if usize::from(b) < limit && out.len() < PASSWORD_LENGTH {
                out.push(char::from(PASSWORD_ALPHABET[usize::from(b) % n]));
            }
        }
    }
    Ok(out)
}

/// A generated password and its hash (hashed off the async threads).
async fn new_password() -> Result<(String, String), AuthError> {
    let password = generate_password()?;
    let hash = {
        let password = password.clone();
        tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|_| AuthError::Internal("password hashing panicked"))??
    };
    Ok((password, hash))
}

/// The audit trail's system for staff accounts.
const USER_SYSTEM: &str = "urn:intake:staff-user";

/// Why [`add`] refused.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The username is taken (in any case).
    #[error("a user named {0} already exists")]
    Duplicate(String),
    /// The role is not a staff role.
    #[error("a staff role is front-desk, clinician or admin")]
    NotAStaffRole,
    /// Anything else.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// Adds a staff user with a generated password, returned once and never stored
/// (`intake user add`: the command line is the agent on the audit trail).
pub async fn add(
    db: &SqlitePool,
    now: SystemTime,
    username: &Username,
    role: Role,
) -> Result<String, AddError> {
    add_by(db, now, username, role, super::command_line_agent()).await
}

/// [`add`], by `agent` (an admin on the staff screen).
pub async fn add_by(
    db: &SqlitePool,
    now: SystemTime,
    username: &Username,
    role: Role,
    agent: crate::audit::Agent,
) -> Result<String, AddError> {
    if Role::parse_staff(role.code()).is_none() {
        return Err(AddError::NotAStaffRole);
    }
    let (password, hash) = new_password().await?;
    let mut tx = crate::db::begin_write(db).await.map_err(AuthError::from)?;
    let inserted = sqlx::query(
        "INSERT INTO staff_user (username, password_hash, role, created_at)
         VALUES (?, ?, ?, ?) ON CONFLICT (username) DO NOTHING",
    )
    .bind(username.as_str())
    .bind(&hash)
    .bind(role.code())
    .bind(fhir_instant(now))
    .execute(&mut *tx)
    .await
    .map_err(AuthError::from)?;
    if inserted.rows_affected() == 0 {
        return Err(AddError::Duplicate(username.as_str().to_owned()));
    }
    let event = crate::audit::Event::new(
        crate::audit::Kind::SecurityAdmin,
        crate::audit::Action::C,
        crate::audit::Outcome::Success,
    )
    .by(Some(agent))
    .about(USER_SYSTEM, username.as_str());
    crate::audit::record(&mut tx, now, &event)
        .await
        .map_err(AuthError::from)?;
    tx.commit().await.map_err(AuthError::from)?;
    Ok(password)
}

/// An account as the administrators' list shows it: never its hash.
#[derive(Debug, serde::Serialize)]
pub struct Listed {
    /// The username.
    pub username: String,
    /// `front-desk`, `clinician` or `admin`.
    pub role: String,
    /// When it was added (FHIR instant).
    pub created: String,
    /// Whether it is disabled (cannot sign in).
    pub disabled: bool,
}

/// Every account, by username.
pub async fn list(db: &SqlitePool) -> Result<Vec<Listed>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT username, role, created_at, disabled FROM staff_user ORDER BY username",
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Listed {
            username: row.get("username"),
            role: row.get("role"),
            created: row.get("created_at"),
            disabled: row.get::<i64, _>("disabled") != 0,
        })
        .collect())
}

/// Why a change to an existing account refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// No account has that name.
    #[error("no such account")]
    NotFound,
    /// Anything else.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl From<sqlx::Error> for ChangeError {
    fn from(error: sqlx::Error) -> Self {
        ChangeError::Auth(AuthError::Database(error))
    }
}

/// Disables (`true`) or enables an account, by `agent`. Disabling ends its
/// sessions in the same transaction: a disabled user is signed out at once.
pub async fn set_disabled(
    db: &SqlitePool,
    now: SystemTime,
    username: &Username,
    disabled: bool,
    agent: crate::audit::Agent,
) -> Result<(), ChangeError> {
    let mut tx = crate::db::begin_write(db).await?;
    let user_id: Option<i64> =
        sqlx::query_scalar("UPDATE staff_user SET disabled = ? WHERE username = ? RETURNING id")
            .bind(i64::from(disabled))
            .bind(username.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    let user_id = user_id.ok_or(ChangeError::NotFound)?;
    if disabled {
        end_sessions(&mut tx, user_id).await?;
    }
    let event = crate::audit::Event::new(
        crate::audit::Kind::SecurityAdmin,
        crate::audit::Action::U,
        crate::audit::Outcome::Success,
    )
    .by(Some(agent))
    .about(USER_SYSTEM, username.as_str())
    .change(if disabled { "disable" } else { "enable" });
    crate::audit::record(&mut tx, now, &event).await?;
    tx.commit().await?;
    Ok(())
}

/// Gives an account a new generated password (returned once, never stored), by
/// `agent`, and ends its sessions: whoever held the old one is signed out.
pub async fn reset_password(
    db: &SqlitePool,
    now: SystemTime,
    username: &Username,
    agent: crate::audit::Agent,
) -> Result<String, ChangeError> {
    let (password, hash) = new_password().await?;
    let mut tx = crate::db::begin_write(db).await?;
    let user_id: Option<i64> = sqlx::query_scalar(
        "UPDATE staff_user SET password_hash = ? WHERE username = ? RETURNING id",
    )
    .bind(&hash)
    .bind(username.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let user_id = user_id.ok_or(ChangeError::NotFound)?;
    end_sessions(&mut tx, user_id).await?;
    let event = crate::audit::Event::new(
        crate::audit::Kind::SecurityAdmin,
        crate::audit::Action::U,
        crate::audit::Outcome::Success,
    )
    .by(Some(agent))
    .about(USER_SYSTEM, username.as_str())
    .change("password");
    crate::audit::record(&mut tx, now, &event).await?;
    tx.commit().await?;
    Ok(password)
}

async fn end_sessions(conn: &mut sqlx::SqliteConnection, user_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM staff_session WHERE user_id = ?")
        .bind(user_id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// An account as login needs it.
#[derive(Debug)]
pub(crate) struct Account {
    pub(crate) principal: Principal,
    pub(crate) password_hash: String,
}

/// The enabled account named `username`, if there is one.
pub(crate) async fn find_enabled(
    db: &SqlitePool,
    username: &Username,
) -> Result<Option<Account>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, username, role, password_hash FROM staff_user
         WHERE username = ? AND disabled = 0",
    )
    .bind(username.as_str())
    .fetch_optional(db)
    .await?;
    Ok(row.and_then(|row| {
        let role = Role::parse_staff(row.get::<&str, _>("role"))?;
        Some(Account {
            principal: Principal {
                kind: PrincipalKind::User(row.get("id")),
                name: row.get("username"),
                role,
            },
            password_hash: row.get("password_hash"),
        })
    }))
}

/// The password hash of the enabled account with row id `user_id`, for
/// re-authentication before a sensitive action (`None`: no such enabled account).
pub(crate) async fn password_hash_of(
    db: &SqlitePool,
    user_id: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT password_hash FROM staff_user WHERE id = ? AND disabled = 0")
        .bind(user_id)
        .fetch_optional(db)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_and_from_the_alphabet() {
        let p = generate_password().unwrap();
        assert_eq!(p.len(), PASSWORD_LENGTH);
        assert!(p.bytes().all(|b| PASSWORD_ALPHABET.contains(&b)));
        assert_ne!(p, generate_password().unwrap());
    }

    #[test]
    fn hashes_are_argon2id_and_verify_only_the_password() {
        let hash = hash_password("correct horse").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horsf", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }
}
