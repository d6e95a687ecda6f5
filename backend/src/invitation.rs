//! Patient invitations: the front desk sends a patient a link to one form; the
//! patient opens it on their phone, proves who they are with their birth date, and
//! answers (prefilled from their chart when the clinic knows them).
//!
//! The link is `{public URL}/i#{token}`: 256 random bits in the fragment, which
//! browsers never send to a server nor put in a `Referer`. The page exchanges the
//! token (`POST /api/invitation/open`) for a `__Host-intake-invite` cookie. The
//! token opens on any device, as often as needed, until the birth date is
//! confirmed with one of its cookies (patients open a link on one device and
//! finish on another, and a messaging app's link preview may open it first);
//! after that only the confirmed cookie goes on. The database holds only SHA-256
//! of the token and of the cookie. Until the birth date is confirmed the cookie shows nothing
//! about the patient; [`MAX_TRIES`] wrong birth dates lock the invitation. An
//! intake sent with the cookie uses the invitation up (in the intake's own
//! transaction; `api::invitation::for_submission` makes the intake's `Invited`), and the server, not the body, says whose
//! it is.
//!
//! Every refusal of the patient's side is the same for an unknown, used, expired,
//! cancelled or already confirmed token ([`InviteError::Invalid`]): nothing says
//! which.

use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use sqlx::{Row as _, SqliteConnection};

use crate::audit::{self, Action, Agent, Event, Kind, Outcome, Reference};
use crate::auth::{AuthError, random_secret, sha256_hex, unix_ms};

/// The identifier system of invitations (the Provenance of an invited intake
/// names its invitation under it; so does the audit trail).
pub const SYSTEM: &str = "urn:intake:invitation";
/// The patient's cookie.
pub const COOKIE: &str = "__Host-intake-invite";
/// Wrong birth dates before the invitation locks.
pub const MAX_TRIES: i64 = 5;
/// An invitation lasts this long unless the front desk says otherwise.
pub const DEFAULT_HOURS: u32 = 72;
/// ... and at most this long, whatever it says.
pub const MAX_HOURS: u32 = 14 * 24;
/// The cookie lasts this long after the link is opened (never past the
/// invitation's own expiry): time to fill in a form, not to keep.
pub const COOKIE_LIFETIME: Duration = Duration::from_secs(30 * 60);

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The invitation holder as the audit trail's agent: the patient, known by the
/// invitation's id (never by name).
pub fn agent(invitation: &str) -> Agent {
    Agent {
        system: SYSTEM,
        name: invitation.to_owned(),
        role: "patient",
    }
}

/// Where an invitation stands, as the front desk sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Created, the link not opened yet.
    Sent,
    /// The link was opened (the birth date perhaps confirmed); no intake yet.
    Opened,
    /// An intake was sent with it.
    Used,
    /// Past its expiry, unused.
    Expired,
    /// Locked by wrong birth dates.
    Locked,
    /// Cancelled by the front desk.
    Cancelled,
}

impl Status {
    /// As the API sends it.
    pub fn code(self) -> &'static str {
        match self {
            Status::Sent => "sent",
            Status::Opened => "opened",
            Status::Used => "used",
            Status::Expired => "expired",
            Status::Locked => "locked",
            Status::Cancelled => "cancelled",
        }
    }
}

/// An invitation's row.
#[derive(Clone)]
pub struct Invitation {
    /// Its id (not secret: it is in the audit trail and the staff list).
    pub id: String,
    /// The invited patient's id, when the clinic knows them.
    pub patient: Option<String>,
    /// The Questionnaire's id.
    pub questionnaire: String,
    /// The appointment, as the front desk gave it (FHIR dateTime).
    pub appointment: Option<String>,
    /// Whom it is for, as the staff list shows it.
    pub name: Option<String>,
    /// The birth date the patient must confirm (`YYYY-MM-DD`).
    birth_date: String,
    /// Who created it.
    pub created_by: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub expires_at: i64,
    opened_at: Option<i64>,
    /// When the birth date was first confirmed (the link opens no more).
    confirmed_at: Option<i64>,
    /// Wrong birth dates so far.
    pub failures: i64,
    locked_at: Option<i64>,
    used_at: Option<i64>,
    cancelled_at: Option<i64>,
}

// By hand: the birth date never reaches a log through `{:?}`.
impl std::fmt::Debug for Invitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invitation")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Invitation {
    /// Where it stands at `now_ms`.
    pub fn status(&self, now_ms: i64) -> Status {
        if self.used_at.is_some() {
            Status::Used
        } else if self.cancelled_at.is_some() {
            Status::Cancelled
        } else if self.locked_at.is_some() {
            Status::Locked
        } else if self.expires_at <= now_ms {
            Status::Expired
        } else if self.opened_at.is_some() {
            Status::Opened
        } else {
            Status::Sent
        }
    }

    /// The birth date the patient confirms (`YYYY-MM-DD`), as the front desk gave
    /// it or the chart had it.
    pub fn birth_date(&self) -> &str {
        &self.birth_date
    }

    /// Whether the birth date was confirmed (the link opens no more).
    pub fn confirmed(&self) -> bool {
        self.confirmed_at.is_some()
    }

    /// The invited patient as a reference, when known.
    pub fn patient_ref(&self) -> Option<Reference> {
        self.patient
            .as_deref()
            .and_then(|p| Reference::parse(&format!("Patient/{p}")))
    }
}

const COLUMNS: &str =
    "id, patient, questionnaire, appointment, patient_name, birth_date, created_by, created_at,
     expires_at, opened_at, confirmed_at, failures, locked_at, used_at, cancelled_at";

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Invitation {
    Invitation {
        id: row.get("id"),
        patient: row.get("patient"),
        questionnaire: row.get("questionnaire"),
        appointment: row.get("appointment"),
        name: row.get("patient_name"),
        birth_date: row.get("birth_date"),
        created_by: row.get("created_by"),
        created_at: row.get("created_at"),
        expires_at: row.get("expires_at"),
        opened_at: row.get("opened_at"),
        confirmed_at: row.get("confirmed_at"),
        failures: row.get("failures"),
        locked_at: row.get("locked_at"),
        used_at: row.get("used_at"),
        cancelled_at: row.get("cancelled_at"),
    }
}

/// What the front desk asked for, checked.
#[derive(Clone, Debug)]
pub struct NewInvitation {
    /// The known patient's id.
    pub patient: Option<String>,
    /// The Questionnaire's id (stored).
    pub questionnaire: String,
    /// FHIR dateTime.
    pub appointment: Option<String>,
    /// Whom it is for (the chart's name, or as the front desk typed it).
    pub name: Option<String>,
    /// The birth date to confirm against.
    pub birth_date: String,
    /// How long it lasts.
    pub lifetime: Duration,
}

/// A created invitation: its id, the token (returned once) and its expiry.
#[derive(Debug)]
pub struct Created {
    /// Its id.
    pub id: String,
    /// The token for the link's fragment.
    pub token: String,
    /// Unix ms.
    pub expires_at: i64,
}

/// Stores a new invitation on `conn` (the caller's write transaction, which also
/// records the audit event).
pub async fn create(
    conn: &mut SqliteConnection,
    now: SystemTime,
    by: &str,
    new: &NewInvitation,
) -> Result<Created, AuthError> {
    let now_ms = unix_ms(now);
    let created = Created {
        id: crate::fhir::extract::IdGenerator::uuid(&crate::fhir::extract::RandomIds),
        token: random_secret()?,
        expires_at: now_ms.saturating_add(ms(new.lifetime)),
    };
    sqlx::query(
        "INSERT INTO invitation (id, token_sha256, patient, questionnaire, appointment,
                                 patient_name, birth_date, created_by, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&created.id)
    .bind(sha256_hex(&created.token))
    .bind(&new.patient)
    .bind(&new.questionnaire)
    .bind(&new.appointment)
    .bind(&new.name)
    .bind(&new.birth_date)
    .bind(by)
    .bind(now_ms)
    .bind(created.expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(created)
}

/// The most recent invitations, newest first.
pub async fn recent(
    conn: &mut SqliteConnection,
    limit: i64,
) -> Result<Vec<Invitation>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM invitation ORDER BY created_at DESC, id LIMIT ?"
    ))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.iter().map(from_row).collect())
}

/// One invitation by id.
pub async fn by_id(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<Option<Invitation>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM invitation WHERE id = ?"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// Cancels an invitation that is not used yet (its cookies stop working at
/// once). `false` if it was used or cancelled before.
pub async fn cancel(
    conn: &mut SqliteConnection,
    now: SystemTime,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE invitation SET cancelled_at = ?
         WHERE id = ? AND used_at IS NULL AND cancelled_at IS NULL",
    )
    .bind(unix_ms(now))
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    sqlx::query("DELETE FROM invitation_session WHERE invitation_id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(done)
}

/// Marks the invitation used by `intake`, ends its cookies and records the write
/// on the audit trail: called in the transaction that accepts the intake.
pub(crate) async fn mark_used(
    conn: &mut SqliteConnection,
    now: SystemTime,
    invitation: &str,
    intake: &str,
    patient: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE invitation SET used_at = ?, intake = ? WHERE id = ?")
        .bind(unix_ms(now))
        .bind(intake)
        .bind(invitation)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM invitation_session WHERE invitation_id = ?")
        .bind(invitation)
        .execute(&mut *conn)
        .await?;
    let mut event = Event::new(
        Kind::Rest(audit::Interaction::Create),
        Action::C,
        Outcome::Success,
    )
    .by(Some(agent(invitation)))
    .about(SYSTEM, invitation);
    if let Some(reference) = patient.and_then(Reference::parse) {
        event = event.on(reference);
    }
    audit::record(conn, now, &event).await?;
    Ok(())
}

/// How the patient's side fails. The messages are fixed and name no patient.
#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    /// The token or cookie is unknown, used, expired, cancelled or already
    /// exchanged (401): one answer for all of them.
    #[error("invitation not usable")]
    Invalid,
    /// The birth date did not match (401, with the tries left).
    #[error("wrong birth date")]
    WrongBirthDate {
        /// Before the invitation locks.
        tries_left: i64,
    },
    /// Locked by wrong birth dates (423).
    #[error("invitation locked")]
    Locked,
    /// The birth date is not confirmed yet (403).
    #[error("birth date not confirmed")]
    NotConfirmed,
    /// A request from another site (403).
    #[error("cross-site request refused")]
    CrossSite,
    /// The database did not answer.
    #[error("database unavailable: {0}")]
    Database(#[from] sqlx::Error),
    /// A staff-side refusal (not signed in, role, CSRF).
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// The `urn:intake:tries-left` extension of a wrong birth date's issue.
pub const TRIES_LEFT_URL: &str = "urn:intake:tries-left";

/// The `Set-Cookie` value that sets the invitation cookie for `max_age`.
pub fn set_cookie(value: &str, max_age: Duration) -> String {
    format!(
        "{COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        max_age.as_secs().max(1)
    )
}

/// The `Set-Cookie` value that removes it.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The invitation cookie's value in `headers`, if any.
pub fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    crate::http::cookie(headers, COOKIE)
}

/// Exchanges a token for a new cookie session, on any device, until the birth
/// date is confirmed with one of them. The cookie's value and how long it lasts;
/// [`InviteError::Invalid`] for any token that cannot be opened (unknown, used,
/// expired, cancelled, or confirmed already). The caller's write transaction records the event.
pub async fn open(
    conn: &mut SqliteConnection,
    now: SystemTime,
    token: &str,
) -> Result<(String, Duration, Invitation), InviteError> {
    let now_ms = unix_ms(now);
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM invitation WHERE token_sha256 = ?"
    ))
    .bind(sha256_hex(token))
    .fetch_optional(&mut *conn)
    .await?;
    let invitation = row.as_ref().map(from_row).ok_or(InviteError::Invalid)?;
    if !matches!(invitation.status(now_ms), Status::Sent | Status::Opened) {
        return Err(InviteError::Invalid);
    }
    let opened = sqlx::query(
        "UPDATE invitation SET opened_at = COALESCE(opened_at, ?)
         WHERE id = ? AND confirmed_at IS NULL",
    )
    .bind(now_ms)
    .bind(&invitation.id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if opened != 1 {
        return Err(InviteError::Invalid);
    }
    let value = random_secret()?;
    let expires_at = (now_ms + ms(COOKIE_LIFETIME)).min(invitation.expires_at);
    sqlx::query(
        "INSERT INTO invitation_session (id_sha256, invitation_id, confirmed, created_at, expires_at)
         VALUES (?, ?, 0, ?, ?)",
    )
    .bind(sha256_hex(&value))
    .bind(&invitation.id)
    .bind(now_ms)
    .bind(expires_at)
    .execute(&mut *conn)
    .await?;
    let lifetime = Duration::from_millis(u64::try_from(expires_at - now_ms).unwrap_or(0));
    Ok((value, lifetime, invitation))
}

/// A live invitation session: the cookie's invitation, and whether the birth
/// date was confirmed with it.
#[derive(Clone, Debug)]
pub struct Holder {
    /// SHA-256 of the cookie.
    id_sha256: String,
    /// Its invitation.
    pub invitation: Invitation,
    /// Whether the birth date was confirmed.
    pub confirmed: bool,
}

/// The session of the cookie in `headers`: [`InviteError::Invalid`] when there is
/// none, it has expired, or its invitation is used, cancelled or expired;
/// [`InviteError::Locked`] when its invitation is locked.
pub async fn holder(
    conn: &mut SqliteConnection,
    now: SystemTime,
    headers: &HeaderMap,
) -> Result<Holder, InviteError> {
    let value = cookie_value(headers).ok_or(InviteError::Invalid)?;
    let id_sha256 = sha256_hex(value);
    let now_ms = unix_ms(now);
    let row = sqlx::query(
        "SELECT invitation_id, confirmed, expires_at FROM invitation_session WHERE id_sha256 = ?",
    )
    .bind(&id_sha256)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(InviteError::Invalid)?;
    if row.get::<i64, _>("expires_at") <= now_ms {
        return Err(InviteError::Invalid);
    }
    let id: String = row.get("invitation_id");
    let invitation = by_id(conn, &id).await?.ok_or(InviteError::Invalid)?;
    match invitation.status(now_ms) {
        Status::Opened => Ok(Holder {
            id_sha256,
            confirmed: row.get::<i64, _>("confirmed") == 1,
            invitation,
        }),
        Status::Locked => Err(InviteError::Locked),
        _ => Err(InviteError::Invalid),
    }
}

/// What a birth-date confirmation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirmation {
    /// Right: the session is confirmed.
    Confirmed,
    /// Wrong, with this many tries left.
    Wrong(i64),
    /// Wrong, and that was the last try: the invitation is locked now.
    LockedNow,
}

/// Checks `birth_date` (`YYYY-MM-DD`) against the invitation of `holder`, on the
/// caller's write transaction.
pub async fn confirm(
    conn: &mut SqliteConnection,
    now: SystemTime,
    holder: &Holder,
    birth_date: &str,
) -> Result<Confirmation, sqlx::Error> {
    let id = &holder.invitation.id;
    // Read again inside the write transaction: two wrong tries at once both count.
    let failures: i64 = sqlx::query_scalar("SELECT failures FROM invitation WHERE id = ?")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    if crate::crypto::constant_time_eq(
        birth_date.as_bytes(),
        holder.invitation.birth_date.as_bytes(),
    ) {
        sqlx::query("UPDATE invitation_session SET confirmed = 1 WHERE id_sha256 = ?")
            .bind(&holder.id_sha256)
            .execute(&mut *conn)
            .await?;
        // The link opens no more: only this device goes on.
        sqlx::query("UPDATE invitation SET confirmed_at = COALESCE(confirmed_at, ?) WHERE id = ?")
            .bind(unix_ms(now))
            .bind(id)
            .execute(&mut *conn)
            .await?;
        return Ok(Confirmation::Confirmed);
    }
    let failures = failures + 1;
    let locked = failures >= MAX_TRIES;
    sqlx::query("UPDATE invitation SET failures = ?, locked_at = ? WHERE id = ?")
        .bind(failures)
        .bind(locked.then(|| unix_ms(now)))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if locked {
        // The cookies stay, so every later try hears "locked" (and is audited).
        return Ok(Confirmation::LockedNow);
    }
    Ok(Confirmation::Wrong(MAX_TRIES - failures))
}
