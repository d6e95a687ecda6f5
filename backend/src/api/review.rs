//! `/api/staff/review`: the match-resolution queue (`GET`), one item (`GET
//! /{task}`) and a decision on it (`POST /{task}/decision`). The work is in
//! [`crate::review`]; here are the roles, re-authentication, `If-Match` and the
//! audit of reads and refusals.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::api::error::ApiError;
use crate::api::extract::Json;
use crate::audit::{self, Action, Event, Interaction, Kind, Outcome, Reference};
use crate::auth::{AuthError, Authenticated, ClientAddr, Principal, PrincipalKind, limits, users};
use crate::fhir::outcome::{Issue, IssueType};
use crate::review::{self, Decision, ReviewError};
use crate::state::AppState;

/// Records a refused access (a role that may not) and answers 403.
async fn refuse(
    app: &AppState,
    who: &Principal,
    address: Option<std::net::IpAddr>,
    action: Action,
    task: Option<&str>,
) -> Result<Response, ApiError> {
    let interaction = match action {
        Action::U => Interaction::Update,
        _ => Interaction::Read,
    };
    let mut event = Event::new(Kind::Rest(interaction), action, Outcome::MinorFailure)
        .by(Some(who.agent()))
        .from(address);
    if let Some(r) = task.and_then(|t| Reference::parse(&format!("Task/{t}"))) {
        event = event.on(r);
    }
    audit::record_alone(&app.db, app.clock.now(), &event).await?;
    Err(ReviewError::Auth(AuthError::Forbidden).into())
}

/// `GET /api/staff/review`: `{count, items}`, oldest first. Front desk,
/// clinicians, admins and system tokens.
#[tracing::instrument(skip_all)]
pub(super) async fn queue(
    State(app): State<AppState>,
    ClientAddr(address): ClientAddr,
    Authenticated(who): Authenticated,
) -> Result<Response, ApiError> {
    if !review::may_read(who.role) {
        return refuse(&app, &who, address, Action::R, None).await;
    }
    let items = review::queue(&app).await?;
    // The queue shows names and birth years: a read of patient data.
    // Which items were shown (each Task names its intake), so the trail says
    // whose names and birth years this person saw (issue 21).
    let event = Event::new(Kind::Rest(Interaction::Search), Action::R, Outcome::Success)
        .by(Some(who.agent()))
        .from(address)
        .on_all(
            items
                .iter()
                .filter_map(|i| Reference::parse(&format!("Task/{}", i.task))),
        );
    audit::record_alone(&app.db, app.clock.now(), &event).await?;
    tracing::info!(review.count = items.len(), "review queue read");
    Ok(axum::Json(json!({"count": items.len(), "items": items})).into_response())
}

/// `GET /api/staff/review/{task}`: the item; the intake's answers only for
/// clinicians and admins. 404 for anything that is not a review item.
#[tracing::instrument(skip_all)]
pub(super) async fn item(
    State(app): State<AppState>,
    ClientAddr(address): ClientAddr,
    Authenticated(who): Authenticated,
    Path(task): Path<String>,
) -> Result<Response, ApiError> {
    if !review::may_read(who.role) {
        return refuse(&app, &who, address, Action::R, Some(&task)).await;
    }
    let (body, shown) = review::item(&app, &task, review::may_see_answers(who.role))
        .await?
        .ok_or(ReviewError::NotFound)?;
    let mut event = Event::new(Kind::Rest(Interaction::Read), Action::R, Outcome::Success)
        .by(Some(who.agent()))
        .from(address);
    for r in shown
        .iter()
        .chain(std::iter::once(&format!("Task/{task}")))
        .filter_map(|r| Reference::parse(r))
    {
        event = event.on(r);
    }
    audit::record_alone(&app.db, app.clock.now(), &event).await?;
    Ok(axum::Json(body).into_response())
}

/// The decision as sent. Fields are checked per action in [`DecisionBody::parse`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DecisionBody {
    action: String,
    patient: Option<String>,
    password: Option<String>,
    accept: Option<Vec<String>>,
    refuse: Option<Vec<String>>,
}

// By hand, so the password never reaches a log through `{:?}`.
impl std::fmt::Debug for DecisionBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionBody")
            .field("action", &self.action)
            .finish_non_exhaustive()
    }
}

fn unprocessable(message: &str, at: &str) -> ReviewError {
    ReviewError::Invalid(Issue::error(IssueType::Required, message).at(at))
}

impl DecisionBody {
    fn parse(&self) -> Result<Decision, ApiError> {
        let patient = || {
            self.patient
                .as_deref()
                .and_then(|p| p.strip_prefix("Patient/"))
                .filter(|id| crate::questionnaires::is_valid_id(id))
                .map(str::to_owned)
                .ok_or_else(|| unprocessable("Name the patient as Patient/<id>", "patient"))
        };
        Ok(match self.action.as_str() {
            "link" => Decision::Link {
                patient: patient()?,
            },
            "create" => Decision::Create,
            "not-this" => Decision::NotThis {
                patient: patient()?,
            },
            "update" => Decision::Update {
                accept: self.accept.clone().unwrap_or_default(),
                refuse: self.refuse.clone().unwrap_or_default(),
            },
            "retry" => Decision::Retry,
            _ => {
                return Err(ReviewError::Invalid(
                    Issue::error(
                        IssueType::Value,
                        "The action is one of link, create, not-this, update, retry",
                    )
                    .at("action"),
                )
                .into());
            }
        })
    }
}

/// The version in `If-Match: W/"3"` (or `"3"`).
fn if_match(headers: &HeaderMap) -> Result<i64, ApiError> {
    let value = headers
        .get(header::IF_MATCH)
        .ok_or(ReviewError::MissingIfMatch)?;
    value
        .to_str()
        .ok()
        .map(str::trim)
        .map(|v| v.strip_prefix("W/").unwrap_or(v))
        .and_then(|v| v.strip_prefix('"')?.strip_suffix('"'))
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| {
            ApiError::BadRequest(
                Issue::error(IssueType::Value, "If-Match must be a version ETag: W/\"3\"")
                    .at("If-Match"),
            )
        })
}

/// `POST /api/staff/review/{task}/decision`: clinicians and admins (and system
/// tokens). `link` and `create` merge or make records: a person gives their
/// password again first.
#[tracing::instrument(skip_all)]
pub(super) async fn decide(
    State(app): State<AppState>,
    ClientAddr(address): ClientAddr,
    Authenticated(who): Authenticated,
    Path(task): Path<String>,
    headers: HeaderMap,
    Json(body): Json<DecisionBody>,
) -> Result<Response, ApiError> {
    let version = if_match(&headers)?;
    let decision = body.parse()?;
    let allowed = review::may_decide(who.role)
        || (who.role == crate::auth::Role::FrontDesk
            && review::front_desk_may_decide(&app, &task, &decision).await?);
    if !allowed {
        return refuse(&app, &who, address, Action::U, Some(&task)).await;
    }
    // The cheap checks first: no password is verified for an item already gone.
    review::precheck(&app, &task, version).await?;
    // A bearer token is a system or an admin script: there is no person at the
    // other end to re-authenticate, and the token itself is the credential.
    if decision.needs_reauthentication()
        && let PrincipalKind::User(user_id) = who.kind
    {
        reauthenticate(&app, &who, user_id, address, &task, body.password).await?;
    }
    let decided = review::decide(&app, &who, address, &task, version, &decision).await?;
    Ok(axum::Json(decided).into_response())
}

/// Checks `password` against the user's argon2id hash. A failure counts towards
/// the account's lockout like a failed login, is audited, and decides nothing.
async fn reauthenticate(
    app: &AppState,
    who: &Principal,
    user_id: i64,
    address: Option<std::net::IpAddr>,
    task: &str,
    password: Option<String>,
) -> Result<(), ApiError> {
    let now = app.clock.now();
    let now_ms = crate::auth::unix_ms(now);
    // Checked and counted in one transaction, as a login is (issue 21).
    let attempt = limits::begin(&app.db, now_ms, &who.name, address).await?;
    let hash = users::password_hash_of(&app.db, user_id).await?;
    let ok = match password {
        Some(p) if !p.is_empty() => users::verify_or_dummy(p, hash).await?,
        _ => false,
    };
    let mut tx = crate::db::begin_write(&app.db).await?;
    if ok {
        limits::succeeded(&mut tx, now_ms, &attempt, &who.name, address).await?;
        tx.commit().await?;
        return Ok(());
    }
    let mut event = Event::new(Kind::Login, Action::E, Outcome::MinorFailure)
        .by(Some(who.agent()))
        .from(address);
    if let Some(r) = Reference::parse(&format!("Task/{task}")) {
        event = event.on(r);
    }
    audit::record(&mut tx, now, &event).await?;
    tx.commit().await?;
    tracing::warn!("re-authentication failed; nothing decided");
    Err(ReviewError::Reauthentication.into())
}
