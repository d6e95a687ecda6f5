//! Bearer tokens for system clients (the EMR, scripts, benchmarks): 256 random
//! bits, stored only as SHA-256, revocable by name.

use std::time::SystemTime;

use sqlx::{Row as _, SqlitePool};

use super::{AuthError, Principal, PrincipalKind, Role, random_secret, sha256_hex};
use crate::audit::{self, Action, Agent, Event, Kind, Outcome};
use crate::clock::fhir_instant;

/// What every token starts with, so a leaked one is recognisable (secret scanners).
pub const TOKEN_PREFIX: &str = "intake_";

/// Why a token command refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// A live token has that name.
    #[error("a token named {0} already exists")]
    Duplicate(String),
    /// No live token has that name.
    #[error("no live token named {0}")]
    NotFound(String),
    /// The role is not a token role, or the name is empty or too long.
    #[error("{0}")]
    Invalid(&'static str),
    /// Anything else.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl From<sqlx::Error> for TokenError {
    fn from(error: sqlx::Error) -> Self {
        TokenError::Auth(AuthError::Database(error))
    }
}

fn check_name(name: &str) -> Result<(), TokenError> {
    if name.trim().is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(TokenError::Invalid(
            "a token name is 1 to 64 printable characters",
        ));
    }
    Ok(())
}

/// Creates a token named `name` with `role` (`system` or `admin`), returning it
/// once; only its hash is kept (`intake token create`: the command line is the
/// agent on the audit trail).
pub async fn create(
    db: &SqlitePool,
    now: SystemTime,
    name: &str,
    role: Role,
) -> Result<String, TokenError> {
    create_by(db, now, name, role, super::command_line_agent()).await
}

/// [`create`], by `agent` (an admin on the staff screen).
pub async fn create_by(
    db: &SqlitePool,
    now: SystemTime,
    name: &str,
    role: Role,
    agent: Agent,
) -> Result<String, TokenError> {
    insert(db, now, name, role, agent, false).await
}

/// [`create`] for a system client whose intakes prove who the patient is (an
/// EMR's own integration, which knows its patients): a `certain` match is filed
/// in the chart. Other tokens' intakes are treated as the public page's: a
/// matched chart is only proposed for staff to confirm (issue 21).
pub async fn create_linking(
    db: &SqlitePool,
    now: SystemTime,
    name: &str,
    role: Role,
) -> Result<String, TokenError> {
    insert(db, now, name, role, super::command_line_agent(), true).await
}

/// Whether the live token with this row id may link intakes to charts.
pub async fn may_link(db: &SqlitePool, token_id: i64) -> Result<bool, sqlx::Error> {
    let may: Option<bool> =
        sqlx::query_scalar("SELECT may_link FROM api_token WHERE id = ? AND revoked_at IS NULL")
            .bind(token_id)
            .fetch_optional(db)
            .await?;
    Ok(may.unwrap_or(false))
}

async fn insert(
    db: &SqlitePool,
    now: SystemTime,
    name: &str,
    role: Role,
    agent: Agent,
    may_link: bool,
) -> Result<String, TokenError> {
    check_name(name)?;
    if Role::parse_token(role.code()).is_none() {
        return Err(TokenError::Invalid("a token's role is system or admin"));
    }
    let token = format!("{TOKEN_PREFIX}{}", random_secret()?);
    let mut tx = crate::db::begin_write(db).await?;
    let taken: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM api_token WHERE name = ? COLLATE NOCASE AND revoked_at IS NULL)",
    )
    .bind(name)
    .fetch_one(&mut *tx)
    .await?;
    if taken {
        return Err(TokenError::Duplicate(name.to_owned()));
    }
    sqlx::query(
        "INSERT INTO api_token (name, token_sha256, role, created_at, may_link) VALUES (?, ?, ?, ?, ?)",
    )
        .bind(name)
        .bind(sha256_hex(&token))
        .bind(role.code())
        .bind(fhir_instant(now))
        .bind(may_link)
        .execute(&mut *tx)
        .await?;
    let mut event = Event::new(Kind::SecurityAdmin, Action::C, Outcome::Success)
        .by(Some(agent))
        .about("urn:intake:token", name);
    if may_link {
        event = event.change("may-link");
    }
    audit::record(&mut tx, now, &event).await?;
    tx.commit().await?;
    Ok(token)
}

/// Revokes the live token named `name` (`intake token revoke`).
pub async fn revoke(db: &SqlitePool, now: SystemTime, name: &str) -> Result<(), TokenError> {
    revoke_by(db, now, name, super::command_line_agent()).await
}

/// [`revoke`], by `agent` (an admin on the staff screen).
pub async fn revoke_by(
    db: &SqlitePool,
    now: SystemTime,
    name: &str,
    agent: Agent,
) -> Result<(), TokenError> {
    let mut tx = crate::db::begin_write(db).await?;
    let revoked = sqlx::query(
        "UPDATE api_token SET revoked_at = ? WHERE name = ? COLLATE NOCASE AND revoked_at IS NULL",
    )
    .bind(fhir_instant(now))
    .bind(name)
    .execute(&mut *tx)
    .await?;
    if revoked.rows_affected() == 0 {
        return Err(TokenError::NotFound(name.to_owned()));
    }
    let event = Event::new(Kind::SecurityAdmin, Action::D, Outcome::Success)
        .by(Some(agent))
        .about("urn:intake:token", name);
    audit::record(&mut tx, now, &event).await?;
    tx.commit().await?;
    Ok(())
}

/// A token as the administrators' list shows it: never the token or its hash.
#[derive(Debug, serde::Serialize)]
pub struct Listed {
    /// The token's name.
    pub name: String,
    /// `system` or `admin`.
    pub role: String,
    /// When it was created (FHIR instant).
    pub created: String,
    /// When it was revoked (FHIR instant), if it was.
    pub revoked: Option<String>,
}

/// Every token, revoked ones included, newest first.
pub async fn list(db: &SqlitePool) -> Result<Vec<Listed>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT name, role, created_at, revoked_at FROM api_token ORDER BY id DESC")
            .fetch_all(db)
            .await?;
    Ok(rows
        .into_iter()
        .map(|row| Listed {
            name: row.get("name"),
            role: row.get("role"),
            created: row.get("created_at"),
            revoked: row.get("revoked_at"),
        })
        .collect())
}

/// The principal of a live token (the value after `Bearer `), or `None`.
///
/// The lookup is by the token's SHA-256, so the database compares hashes, never
/// the secret itself, and its timing says nothing useful about the token.
pub async fn token_principal(
    db: &SqlitePool,
    bearer: &str,
) -> Result<Option<Principal>, sqlx::Error> {
    if !bearer.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT id, name, role FROM api_token WHERE token_sha256 = ? AND revoked_at IS NULL",
    )
    .bind(sha256_hex(bearer))
    .fetch_optional(db)
    .await?;
    Ok(row.and_then(|row| {
        Some(Principal {
            kind: PrincipalKind::Token(row.get("id")),
            name: row.get("name"),
            role: Role::parse_token(row.get::<&str, _>("role"))?,
        })
    }))
}
