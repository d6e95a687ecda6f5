//! Kiosks: front-desk devices an admin registers (`intake kiosk add`, or
//! `POST /api/admin/kiosks`), each with the forms it shows.
//!
//! A kiosk is a device, not a person: it enrols once with a one-time code (140
//! random bits, typed by staff, stored as SHA-256, expiring after
//! [`CODE_LIFETIME`]) and then holds a device secret in the `__Host-intake-kiosk`
//! cookie (256 random bits, stored as SHA-256). It may read its own settings and
//! send intakes for its forms, nothing else: it is never a [`Principal`], so no
//! staff or system route accepts it. Revoking a kiosk refuses its cookie at once.
//!
//! [`Principal`]: crate::auth::Principal

use std::time::{Duration, SystemTime};

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde::Serialize;
use sqlx::{Row as _, SqlitePool};

use crate::audit::{self, Action, Agent, Event, Kind, Outcome};
use crate::auth::{AuthError, random_bytes, random_secret, sha256_hex, unix_ms};
use crate::clock::fhir_instant;
use crate::state::AppState;

/// The device cookie's name (`__Host-`: Secure, `Path=/`, no `Domain`).
pub const COOKIE: &str = "__Host-intake-kiosk";
/// How long an enrolment code can be used.
pub const CODE_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How long the browser keeps the device cookie: 400 days, the longest Chromium
/// honours. Its loss only means enrolling again.
const COOKIE_MAX_AGE_SECS: u64 = 400 * 24 * 3600;
/// The audit trail's identifier system for kiosks.
pub const AGENT_SYSTEM: &str = "urn:intake:kiosk";
/// The idle time before the warning, unless the kiosk sets its own.
pub const DEFAULT_IDLE_SECONDS: u32 = 60;
/// The warning's countdown, unless the kiosk sets its own.
pub const DEFAULT_WARN_SECONDS: u32 = 20;
/// RFC 4648 base32: no 0, 1, 8 or 9 to mistake for letters.
const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Characters in a code: 28 × 5 = 140 bits.
const CODE_CHARS: usize = 28;

/// Why a kiosk could not be added or revoked.
#[derive(Debug, thiserror::Error)]
pub enum KioskError {
    /// The name, a form or a setting is not acceptable: what, and where.
    #[error("{problem}")]
    Invalid {
        /// The field (`name`, `forms[1]`, `idleSeconds`).
        at: String,
        /// What is wrong, in words for the admin.
        problem: String,
    },
    /// A live kiosk has that name.
    #[error("a kiosk with that name exists")]
    Duplicate,
    /// No live kiosk has that id.
    #[error("no such kiosk")]
    NotFound,
    /// The database, or the random source.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl From<sqlx::Error> for KioskError {
    fn from(error: sqlx::Error) -> Self {
        KioskError::Auth(AuthError::Database(error))
    }
}

fn invalid(at: impl Into<String>, problem: impl Into<String>) -> KioskError {
    KioskError::Invalid {
        at: at.into(),
        problem: problem.into(),
    }
}

/// What a new kiosk is to be.
#[derive(Clone, Debug)]
pub struct NewKiosk {
    /// Shown to staff, in Provenance and in the audit trail (1 to 64 printable
    /// characters, unique among live kiosks).
    pub name: String,
    /// Ids of stored Questionnaires, at least one.
    pub forms: Vec<String>,
    /// Seconds without input before the warning (1 to 3600).
    pub idle_seconds: u32,
    /// Seconds of the warning's countdown (1 to 600).
    pub warn_seconds: u32,
}

/// A kiosk just added: its id and its one-time enrolment code.
#[derive(Debug)]
pub struct Added {
    /// The kiosk's id.
    pub id: i64,
    /// The enrolment code, shown once (`ABCD-EFGH-…`).
    pub code: String,
    /// When the code stops working.
    pub code_expires_at: SystemTime,
}

/// A kiosk as admins see it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// The ids of its forms, in order.
    pub forms: Vec<String>,
    /// Idle seconds before the warning.
    pub idle_seconds: u32,
    /// The warning's seconds.
    pub warn_seconds: u32,
    /// When it was added.
    pub created_at: String,
    /// When a device enrolled with its code, if one has.
    pub enrolled_at: Option<String>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

/// A new enrolment code: 140 random bits in base32, in groups of four.
fn new_code() -> Result<String, AuthError> {
    let bytes = random_bytes::<18>()?;
    let mut bits = 0_u32;
    let mut held = 0_u32;
    let mut chars = Vec::with_capacity(CODE_CHARS);
    for byte in bytes {
        bits = (bits << 8) | u32::from(byte);
        held += 8;
        while held >= 5 && chars.len() < CODE_CHARS {
            held -= 5;
            chars.push(ALPHABET[((bits >> held) & 31) as usize]);
        }
        bits &= (1 << held) - 1;
    }
    Ok(chars
        .chunks(4)
        .map(|group| String::from_utf8_lossy(group).into_owned())
        .collect::<Vec<_>>()
        .join("-"))
}

/// A code as typed, the way it is hashed: upper case, without spaces and dashes,
/// with the digits people type for look-alike letters read as those letters.
/// `None` if it cannot be a code (wrong length or characters).
pub fn normalize_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            '0' => 'O',
            '1' => 'I',
            '8' => 'B',
            other => other,
        })
        .collect();
    (code.len() == CODE_CHARS && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

fn check(new: &NewKiosk) -> Result<(), KioskError> {
    if new.name.trim().is_empty()
        || new.name.chars().count() > 64
        || new.name.chars().any(char::is_control)
    {
        return Err(invalid(
            "name",
            "A kiosk's name is 1 to 64 printable characters",
        ));
    }
    if new.forms.is_empty() {
        return Err(invalid("forms", "Assign at least one form to the kiosk"));
    }
    if new.forms.len() > 20 {
        return Err(invalid("forms", "A kiosk shows at most 20 forms"));
    }
    if !(1..=3600).contains(&new.idle_seconds) {
        return Err(invalid("idleSeconds", "The idle time is 1 to 3600 seconds"));
    }
    if !(1..=600).contains(&new.warn_seconds) {
        return Err(invalid("warnSeconds", "The warning lasts 1 to 600 seconds"));
    }
    Ok(())
}

/// Adds a kiosk (by `agent`: an admin, or the command line), returning its
/// one-time enrolment code. Every form must be a stored Questionnaire.
pub async fn add(
    db: &SqlitePool,
    now: SystemTime,
    new: &NewKiosk,
    agent: Agent,
) -> Result<Added, KioskError> {
    check(new)?;
    let code = new_code()?;
    let expires = now + CODE_LIFETIME;
    let mut tx = crate::db::begin_write(db).await?;
    for (i, form) in new.forms.iter().enumerate() {
        let stored: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM compiled_form WHERE questionnaire_id = ?)",
        )
        .bind(form)
        .fetch_one(&mut *tx)
        .await?;
        if !stored {
            return Err(invalid(
                format!("forms[{i}]"),
                "There is no stored Questionnaire with this id",
            ));
        }
    }
    let taken: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM kiosk WHERE name = ? COLLATE NOCASE AND revoked_at IS NULL)",
    )
    .bind(&new.name)
    .fetch_one(&mut *tx)
    .await?;
    if taken {
        return Err(KioskError::Duplicate);
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO kiosk (name, idle_seconds, warn_seconds, created_at, code_sha256, code_expires_at)
         VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&new.name)
    .bind(new.idle_seconds)
    .bind(new.warn_seconds)
    .bind(fhir_instant(now))
    .bind(sha256_hex(&normalize_code(&code).unwrap_or_default()))
    .bind(unix_ms(expires))
    .fetch_one(&mut *tx)
    .await?;
    for (position, form) in new.forms.iter().enumerate() {
        sqlx::query(
            "INSERT INTO kiosk_form (kiosk_id, position, questionnaire_id) VALUES (?, ?, ?)",
        )
        .bind(id)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .bind(form)
        .execute(&mut *tx)
        .await?;
    }
    let event = Event::new(Kind::SecurityAdmin, Action::C, Outcome::Success)
        .by(Some(agent))
        .about(AGENT_SYSTEM, &new.name);
    audit::record(&mut tx, now, &event).await?;
    tx.commit().await?;
    Ok(Added {
        id,
        code,
        code_expires_at: expires,
    })
}

/// Every kiosk, revoked ones included, newest first.
pub async fn list(db: &SqlitePool) -> Result<Vec<Listed>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, name, idle_seconds, warn_seconds, created_at, enrolled_at, revoked_at
         FROM kiosk ORDER BY id DESC",
    )
    .fetch_all(db)
    .await?;
    let mut kiosks = Vec::with_capacity(rows.len());
    for row in rows {
        let id: i64 = row.get("id");
        kiosks.push(Listed {
            id,
            name: row.get("name"),
            forms: forms_of(db, id).await?,
            idle_seconds: row.get("idle_seconds"),
            warn_seconds: row.get("warn_seconds"),
            created_at: row.get("created_at"),
            enrolled_at: row.get("enrolled_at"),
            revoked_at: row.get("revoked_at"),
        });
    }
    Ok(kiosks)
}

async fn forms_of(db: &SqlitePool, id: i64) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT questionnaire_id FROM kiosk_form WHERE kiosk_id = ? ORDER BY position",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// Revokes the live kiosk `id` (by `agent`): its cookie and any unused code stop
/// working at once.
pub async fn revoke(
    db: &SqlitePool,
    now: SystemTime,
    id: i64,
    agent: Agent,
) -> Result<(), KioskError> {
    let mut tx = crate::db::begin_write(db).await?;
    let name: Option<String> = sqlx::query_scalar(
        "UPDATE kiosk SET revoked_at = ?, code_sha256 = NULL
         WHERE id = ? AND revoked_at IS NULL RETURNING name",
    )
    .bind(fhir_instant(now))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let name = name.ok_or(KioskError::NotFound)?;
    let event = Event::new(Kind::SecurityAdmin, Action::D, Outcome::Success)
        .by(Some(agent))
        .about(AGENT_SYSTEM, &name);
    audit::record(&mut tx, now, &event).await?;
    tx.commit().await?;
    Ok(())
}

/// An enrolled, live kiosk: who sent a request with its cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Idle seconds before the warning.
    pub idle_seconds: u32,
    /// The warning's seconds.
    pub warn_seconds: u32,
}

impl Device {
    /// The kiosk as the audit trail's agent.
    pub fn agent(&self) -> Agent {
        Agent {
            system: AGENT_SYSTEM,
            name: self.name.clone(),
            role: "kiosk",
        }
    }

    /// The ids of its forms, in order.
    pub async fn forms(&self, db: &SqlitePool) -> Result<Vec<String>, sqlx::Error> {
        forms_of(db, self.id).await
    }
}

/// Enrols the browser that typed `typed`: a live kiosk's unused, unexpired code
/// becomes spent and the kiosk gets a new device secret, returned once (the
/// cookie's value). `None` for any code that does not qualify, whatever the
/// reason, so the answer says nothing about which codes exist. Audited either way.
pub async fn enroll(
    db: &SqlitePool,
    now: SystemTime,
    typed: &str,
    address: Option<std::net::IpAddr>,
) -> Result<Option<(Device, String)>, AuthError> {
    let mut tx = crate::db::begin_write(db).await?;
    let found = match normalize_code(typed) {
        Some(code) => {
            sqlx::query(
                "SELECT id, name, idle_seconds, warn_seconds FROM kiosk
                 WHERE code_sha256 = ? AND revoked_at IS NULL AND code_expires_at > ?",
            )
            .bind(sha256_hex(&code))
            .bind(unix_ms(now))
            .fetch_optional(&mut *tx)
            .await?
        }
        None => None,
    };
    let Some(row) = found else {
        let failure = Event::new(Kind::Login, Action::E, Outcome::MinorFailure).from(address);
        audit::record(&mut tx, now, &failure).await?;
        tx.commit().await?;
        return Ok(None);
    };
    let device = Device {
        id: row.get("id"),
        name: row.get("name"),
        idle_seconds: row.get("idle_seconds"),
        warn_seconds: row.get("warn_seconds"),
    };
    let secret = random_secret()?;
    sqlx::query(
        "UPDATE kiosk SET code_sha256 = NULL, device_sha256 = ?, enrolled_at = ? WHERE id = ?",
    )
    .bind(sha256_hex(&secret))
    .bind(fhir_instant(now))
    .bind(device.id)
    .execute(&mut *tx)
    .await?;
    let event = Event::new(Kind::Login, Action::E, Outcome::Success)
        .by(Some(device.agent()))
        .from(address)
        .about(AGENT_SYSTEM, &device.name);
    audit::record(&mut tx, now, &event).await?;
    tx.commit().await?;
    Ok(Some((device, secret)))
}

/// The `Set-Cookie` value of the device cookie.
pub fn set_cookie(secret: &str) -> String {
    format!(
        "{COOKIE}={secret}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={COOKIE_MAX_AGE_SECS}"
    )
}

/// The `Set-Cookie` value that removes it.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    crate::http::cookie(headers, COOKIE)
}

/// The live kiosk whose device secret is `secret`.
async fn device(db: &SqlitePool, secret: &str) -> Result<Option<Device>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, name, idle_seconds, warn_seconds FROM kiosk
         WHERE device_sha256 = ? AND revoked_at IS NULL",
    )
    .bind(sha256_hex(secret))
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| Device {
        id: row.get("id"),
        name: row.get("name"),
        idle_seconds: row.get("idle_seconds"),
        warn_seconds: row.get("warn_seconds"),
    }))
}

/// A request from an enrolled, live kiosk (its cookie); else 401.
#[derive(Clone, Debug)]
pub struct Kiosk(pub Device);

impl FromRequestParts<AppState> for Kiosk {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match MaybeKiosk::from_request_parts(parts, state).await? {
            MaybeKiosk(Some(device)) => Ok(Kiosk(device)),
            MaybeKiosk(None) => Err(AuthError::Unauthenticated),
        }
    }
}

/// A request that may come from a kiosk: `None` without the device cookie, the
/// kiosk with a live one, and 401 with one that is not (revoked, or never was):
/// a kiosk that has been revoked must not go on sending as anyone.
#[derive(Clone, Debug)]
pub struct MaybeKiosk(pub Option<Device>);

impl FromRequestParts<AppState> for MaybeKiosk {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(secret) = cookie_value(&parts.headers) else {
            return Ok(MaybeKiosk(None));
        };
        device(&state.db, secret)
            .await?
            .map(|d| MaybeKiosk(Some(d)))
            .ok_or(AuthError::Unauthenticated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_carry_140_bits_in_groups_of_four_and_read_back_as_typed() {
        let code = new_code().unwrap();
        assert_eq!(code.len(), CODE_CHARS + CODE_CHARS / 4 - 1, "{code}");
        assert!(code.split('-').all(|g| g.len() == 4), "{code}");
        assert_ne!(code, new_code().unwrap());
        let plain = code.replace('-', "");
        assert_eq!(normalize_code(&code).as_deref(), Some(plain.as_str()));
        let typed = code.to_ascii_lowercase().replace('-', " ");
        assert_eq!(normalize_code(&typed).as_deref(), Some(plain.as_str()));
        assert_eq!(normalize_code(&plain[1..]), None);
        assert_eq!(normalize_code(&format!("{plain}A")), None);
        assert_eq!(normalize_code(&format!("{}!", &plain[1..])), None);
        // Digits people type for look-alike letters.
        let o = format!("O{}", &plain[1..]);
        assert_eq!(normalize_code(&format!("0{}", &plain[1..])), Some(o));
    }

    #[test]
    fn the_device_cookie_is_host_only_secure_http_only_and_strict() {
        let cookie = set_cookie("s3cret");
        assert!(cookie.starts_with(
            "__Host-intake-kiosk=s3cret; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age="
        ));
        assert!(!cookie.contains("Domain"));
    }
}
