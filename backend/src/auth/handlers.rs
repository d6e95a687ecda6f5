//! `POST /api/staff/login`, `POST /api/staff/logout`, `GET /api/staff/me`.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::session::{self, CsrfChecked, StaffSession};
use super::{AuthError, Authenticated, ClientAddr, Role, Username, limits, unix_ms, users};
use crate::api::error::ApiError;
use crate::api::extract::Json;
use crate::audit::{self, Action, Event, Kind, Outcome};
use crate::fhir::outcome::{Issue, IssueType};
use crate::state::AppState;

/// The login form.
#[derive(Deserialize)]
pub struct LoginRequest {
    username: String,
    password: String,
}

// By hand, so the password never reaches a log through `{:?}`.
impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest").finish_non_exhaustive()
    }
}

/// Who is signed in, and the token their state-changing requests must carry.
#[derive(Debug, Serialize)]
pub struct Me {
    username: String,
    role: Role,
    csrf: String,
}

/// `POST /api/staff/login`: 200 with the session cookie and [`Me`]; 401 with one
/// message for every wrong name or password; 429 with `Retry-After` while the name
/// is locked (the right password included) or the address has failed too often.
#[tracing::instrument(skip_all)]
pub async fn login(
    State(app): State<AppState>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    uri: Uri,
    Json(form): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    let now = app.clock.now();
    // Login CSRF (signing the victim's browser into the attacker's account): a
    // page elsewhere cannot send JSON here without CORS, which we do not allow,
    // and its Origin is refused as well.
    if !session::same_origin(&headers, uri.authority().map(|a| a.as_str())) {
        let event = Event::new(Kind::CsrfRefused, Action::E, Outcome::SeriousFailure).from(address);
        audit::record_alone(&app.db, now, &event).await?;
        return Err(AuthError::CsrfRefused.into());
    }
    let now_ms = unix_ms(now);
    // Checked and counted as a failure in one transaction before the password
    // is: concurrent guesses cannot all pass the check (issue 21).
    let attempt = match limits::begin(&app.db, now_ms, &form.username, address).await {
        Ok(attempt) => attempt,
        Err(error) => {
            if matches!(error, AuthError::Throttled { .. }) {
                // A refused attempt is a failed login on the trail too (the password
                // was not even checked; the name is still not recorded).
                let refused =
                    Event::new(Kind::Login, Action::E, Outcome::MinorFailure).from(address);
                audit::record_alone(&app.db, now, &refused).await?;
            }
            return Err(error.into());
        }
    };
    // A name that cannot be a username is looked up as nobody: same work, same answer.
    let account = match Username::parse(&form.username) {
        Some(name) => users::find_enabled(&app.db, &name).await?,
        None => None,
    };
    let hash = account.as_ref().map(|a| a.password_hash.clone());
    let ok = users::verify_or_dummy(form.password, hash).await?;
    let mut tx = crate::db::begin_write(&app.db).await?;
    let account = match account {
        Some(account) if ok => account,
        account => {
            let locked = limits::failed(&attempt);
            // The name tried is not recorded: it may be a password typed in the wrong box.
            let failure = Event::new(Kind::Login, Action::E, Outcome::MinorFailure).from(address);
            audit::record(&mut tx, now, &failure).await?;
            if locked {
                let mut lockout =
                    Event::new(Kind::Lockout, Action::E, Outcome::SeriousFailure).from(address);
                // Which account, if it is one: the audit trail is for admins, not the client.
                if let Some(account) = &account {
                    lockout = lockout.about("urn:intake:staff-user", &account.principal.name);
                }
                audit::record(&mut tx, now, &lockout).await?;
                tracing::warn!("a login name was locked after repeated failures");
            }
            tx.commit().await?;
            return Err(AuthError::LoginFailed.into());
        }
    };
    let super::PrincipalKind::User(user_id) = account.principal.kind else {
        return Err(AuthError::Internal("a staff account without a user id").into());
    };
    limits::succeeded(&mut tx, now_ms, &attempt, &form.username, address).await?;
    let new = session::create(&mut tx, now_ms, user_id).await?;
    let event = Event::new(Kind::Login, Action::E, Outcome::Success)
        .by(Some(account.principal.agent()))
        .from(address);
    audit::record(&mut tx, now, &event).await?;
    tx.commit().await?;
    let me = Me {
        username: account.principal.name,
        role: account.principal.role,
        csrf: new.csrf,
    };
    let mut response = axum::Json(me).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&session::set_cookie(&new.id))
            .map_err(|_| AuthError::Internal("a session id that is not a header value"))?,
    );
    Ok(response)
}

/// `POST /api/staff/logout`: deletes the session (204) and clears the cookie.
#[tracing::instrument(skip_all)]
pub async fn logout(
    State(app): State<AppState>,
    ClientAddr(address): ClientAddr,
    CsrfChecked(staff): CsrfChecked,
) -> Result<Response, ApiError> {
    let now = app.clock.now();
    let mut tx = crate::db::begin_write(&app.db).await?;
    session::delete(&mut tx, &staff).await?;
    let event = Event::new(Kind::Logout, Action::E, Outcome::Success)
        .by(Some(staff.principal.agent()))
        .from(address);
    audit::record(&mut tx, now, &event).await?;
    tx.commit().await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&session::clear_cookie())
            .map_err(|_| AuthError::Internal("a cookie that is not a header value"))?,
    );
    Ok(response)
}

/// `GET /fhir/AuditEvent` (admins, by session or token): the audit trail searched
/// by `patient`, `agent`, `date` (see [`audit::Search`]), newest first, as a
/// `searchset` Bundle. The search is itself audited, and so is a refusal.
#[tracing::instrument(skip_all)]
pub async fn audit_events(
    State(app): State<AppState>,
    ClientAddr(address): ClientAddr,
    Authenticated(principal): Authenticated,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let now = app.clock.now();
    let allowed = principal.role == Role::Admin;
    let event = Event::new(
        Kind::Rest(audit::Interaction::Search),
        Action::R,
        if allowed {
            Outcome::Success
        } else {
            Outcome::MinorFailure
        },
    )
    .by(Some(principal.agent()))
    .from(address);
    if !allowed {
        audit::record_alone(&app.db, now, &event).await?;
        return Err(AuthError::Forbidden.into());
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|_| {
        ApiError::BadRequest(Issue::error(
            IssueType::Structure,
            "The query could not be read",
        ))
    })?;
    let search = audit::Search::parse(&pairs).map_err(|bad| {
        ApiError::BadRequest(Issue::error(IssueType::Value, bad.problem).at(bad.name))
    })?;
    let events = audit::search(&app.db, &search).await?;
    audit::record_alone(&app.db, now, &event).await?;
    let bundle = serde_json::json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": events.len(),
        "entry": events
            .into_iter()
            .map(|e| serde_json::json!({"resource": e, "search": {"mode": "match"}}))
            .collect::<Vec<_>>(),
    });
    let mut response = (StatusCode::OK, bundle.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::fhir::FHIR_JSON),
    );
    Ok(response)
}

/// `GET /api/staff/me`: the signed-in user (and the CSRF token, for a page that
/// was reloaded), or 401.
pub async fn me(staff: StaffSession) -> axum::Json<Me> {
    axum::Json(Me {
        username: staff.principal.name,
        role: staff.principal.role,
        csrf: staff.csrf,
    })
}
