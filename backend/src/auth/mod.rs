//! Who is asking: staff accounts and their sessions, system tokens, login
//! throttling, and the extractors later routes use to require them.
//!
//! - `users.rs`: staff accounts (`intake user add`), argon2id hashes.
//! - `tokens.rs`: bearer tokens for system clients (`intake token create|revoke`),
//!   [`token_principal`].
//! - `session.rs`: server-side sessions in a `__Host-` cookie, the [`StaffSession`]
//!   and [`CsrfChecked`] extractors, [`ClientAddr`].
//! - `limits.rs`: failed-login counting per name tried and per address, lockout.
//! - `policy.rs`: the table of who may call each `/api` and `/fhir` route, and
//!   the middleware that enforces it (deny by default).
//! - `handlers.rs`: `POST /api/staff/login`, `POST /api/staff/logout`, `GET /api/staff/me`.
//! - `error.rs`: [`AuthError`], answered as an `OperationOutcome`.
//!
//! Secrets come from the OS's random source (`ring::rand::SystemRandom`) and are
//! stored only hashed.

pub(crate) mod error;
pub mod handlers;
pub mod limits;
pub mod policy;
pub mod session;
pub mod tokens;
pub mod users;

pub(crate) use crate::crypto::{constant_time_eq, sha256_hex};

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::{Deserialize, Serialize};

pub use error::AuthError;
pub use session::{Authenticated, ClientAddr, CsrfChecked, StaffSession};
pub use tokens::token_principal;

/// What a principal may do. Staff have one of the first three; tokens one of the
/// last two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Sees the queue and demographics.
    FrontDesk,
    /// Also sees answers and resolves matches.
    Clinician,
    /// Manages users, forms, kiosks and tokens.
    Admin,
    /// A system client (the EMR, scripts): a token only.
    System,
}

impl Role {
    /// The role's code, as stored and sent.
    pub fn code(self) -> &'static str {
        match self {
            Role::FrontDesk => "front-desk",
            Role::Clinician => "clinician",
            Role::Admin => "admin",
            Role::System => "system",
        }
    }

    /// A staff role from its code (`front-desk`, `clinician`, `admin`).
    pub fn parse_staff(code: &str) -> Option<Self> {
        match code {
            "front-desk" => Some(Role::FrontDesk),
            "clinician" => Some(Role::Clinician),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// A token role from its code (`system`, `admin`).
    pub fn parse_token(code: &str) -> Option<Self> {
        match code {
            "system" => Some(Role::System),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Whether a principal is a person or a system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A staff user (by row id), through a session.
    User(i64),
    /// A system token (by row id), through `Authorization: Bearer`.
    Token(i64),
}

/// Who a request is from, once authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// A user or a token.
    pub kind: PrincipalKind,
    /// The username or the token's name.
    pub name: String,
    /// What they may do.
    pub role: Role,
}

impl Principal {
    /// The principal as the audit trail's agent.
    pub fn agent(&self) -> crate::audit::Agent {
        crate::audit::Agent {
            system: match self.kind {
                PrincipalKind::User(_) => "urn:intake:staff-user",
                PrincipalKind::Token(_) => "urn:intake:token",
            },
            name: self.name.clone(),
            role: self.role.code(),
        }
    }
}

/// The agent of what the `intake` command line does: whoever can run it on the
/// server is its administrator.
pub fn command_line_agent() -> crate::audit::Agent {
    crate::audit::Agent {
        system: "urn:intake:command-line",
        name: "intake".to_owned(),
        role: Role::Admin.code(),
    }
}

/// A username: 1 to 64 of ASCII letters, digits, `.`, `_`, `-`, starting with a
/// letter or digit, kept in lower case (so `Alice` and `alice` are one account).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// The name in lower case, or `None` if it has other characters or length.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = (1..=64).contains(&text.len())
            && text.starts_with(|c: char| c.is_ascii_alphanumeric())
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        ok.then(|| Self(text.to_ascii_lowercase()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `n` bytes from the OS's random source.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut bytes = [0_u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AuthError::Internal("the OS random source failed"))?;
    Ok(bytes)
}

/// 256 random bits, URL-safe base64 without padding (43 characters).
pub(crate) fn random_secret() -> Result<String, AuthError> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// Unix milliseconds.
pub(crate) fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lower_case_ascii() {
        assert_eq!(Username::parse("Alice.B").unwrap().as_str(), "alice.b");
        assert!(Username::parse("").is_none());
        assert!(Username::parse("-x").is_none());
        assert!(Username::parse("a b").is_none());
        assert!(Username::parse("ä").is_none());
        assert!(Username::parse(&"a".repeat(65)).is_none());
    }

    #[test]
    fn secrets_are_256_bits_url_safe_and_differ() {
        let a = random_secret().unwrap();
        assert_eq!(a.len(), 43);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(a, random_secret().unwrap());
    }

    #[test]
    fn constant_time_eq_compares_length_and_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
