//! Invitations (see `crate::invitation`). Staff: `POST /api/staff/invitations`,
//! `GET /api/staff/invitations`, `DELETE /api/staff/invitations/{id}`. The
//! patient: `POST /api/invitation/open`, `POST /api/invitation/confirm`,
//! `GET /api/invitation/form` (and `POST /api/intakes` with the cookie).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::error::ApiError;
use crate::api::extract::Json;
use crate::audit::{self, Action, Event, Interaction, Kind, Outcome, Reference};
use crate::auth::{AuthError, Authenticated, ClientAddr, Principal, Role, unix_ms};
use crate::clock::fhir_instant;
use crate::fhir::outcome::{Issue, IssueType};
use crate::intake::Invited;
use crate::invitation::{
    self, Confirmation, DEFAULT_HOURS, Invitation, InviteError, MAX_HOURS, NewInvitation, SYSTEM,
};
use crate::state::AppState;

/// Front desk, clinicians and admins manage invitations; system tokens do not.
fn may_invite(role: Role) -> bool {
    matches!(role, Role::FrontDesk | Role::Clinician | Role::Admin)
}

/// Refuses (403, audited) a principal whose role may not manage invitations.
async fn require_role(
    app: &AppState,
    principal: &Principal,
    address: Option<std::net::IpAddr>,
    interaction: Interaction,
    action: Action,
) -> Result<(), ApiError> {
    if may_invite(principal.role) {
        return Ok(());
    }
    let event = Event::new(Kind::Rest(interaction), action, Outcome::MinorFailure)
        .by(Some(principal.agent()))
        .from(address);
    audit::record_alone(&app.db, app.clock.now(), &event).await?;
    Err(AuthError::Forbidden.into())
}

/// The body of `POST /api/staff/invitations`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct CreateBody {
    patient: Option<String>,
    questionnaire: String,
    appointment: Option<String>,
    expires_in_hours: Option<u32>,
    birth_date: Option<String>,
    /// Whom it is for, for the staff list, when the clinic has no chart yet.
    name: Option<String>,
}

/// The longest name the front desk may type for the list.
const MAX_NAME: usize = 200;

/// The chart's name as staff lists show it: `Family, Given Middle`.
fn chart_name(chart: &Value) -> Option<String> {
    let record = crate::fhir::patient::to_record(chart);
    let given = record.given.join(" ");
    let name = match (record.family.as_deref().map(str::trim), given.trim()) {
        (Some(family), "") if !family.is_empty() => family.to_owned(),
        (Some(family), given) if !family.is_empty() => format!("{family}, {given}"),
        (_, given) if !given.is_empty() => given.to_owned(),
        _ => return None,
    };
    Some(name)
}

/// The link as a QR code (SVG), for a patient at the desk to scan with their
/// phone. `None` if it cannot be one (a link far longer than ours).
fn qr_svg(link: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(link, qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

fn invalid(at: &str, message: &str) -> ApiError {
    ApiError::Unprocessable(vec![Issue::error(IssueType::Value, message).at(at)])
}

/// A full date (`YYYY-MM-DD`) that exists, as written.
fn full_date(text: &str) -> Option<String> {
    (text.len() == 10)
        .then(|| shared::date::Date::parse(text).ok())
        .flatten()
        .map(|_| text.to_owned())
}

/// A FHIR dateTime: `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or with a time and a zone.
fn date_time(text: &str) -> bool {
    let date = text.get(..10).unwrap_or(text);
    let ok_date = match date.len() {
        4 => date.bytes().all(|b| b.is_ascii_digit()),
        7 => shared::date::Date::parse(&format!("{date}-01")).is_ok(),
        10 => shared::date::Date::parse(date).is_ok(),
        _ => false,
    };
    let rest = text.get(10..).unwrap_or("");
    let ok_time = rest.is_empty()
        || (rest.starts_with('T')
            && rest.len() <= 30
            && (rest.ends_with('Z')
                || rest
                    .get(rest.len().saturating_sub(6)..)
                    .is_some_and(|z| z.starts_with(['+', '-'])))
            && rest[1..]
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b':' | b'.' | b'+' | b'-' | b'Z')));
    ok_date && ok_time && (rest.is_empty() || text.len() > 10 && date.len() == 10)
}

/// Where patients reach the app: `INTAKE_PUBLIC_URL`, else the scheme and host
/// this request came in with (the URI's, as a proxy may give an absolute one;
/// else `X-Forwarded-Proto` from a proxy in front, else plain `http`, which is
/// how a request reaches this server unless a proxy says otherwise).
fn public_base(app: &AppState, headers: &HeaderMap, uri: &Uri) -> String {
    if let Some(url) = &app.public_url {
        return url.clone();
    }
    let header = |name: &str| headers.get(name).and_then(|h| h.to_str().ok());
    let host = uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| header(header::HOST.as_str()))
        .filter(|h| !h.is_empty() && !h.contains(['/', '@', ' ']))
        .unwrap_or("localhost");
    let scheme = match uri.scheme_str().or_else(|| header("x-forwarded-proto")) {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

/// `POST /api/staff/invitations`: 201 `{invitation, link, qr, expires}`. The
/// link's token is in its fragment and is shown this once (`qr` is the link as
/// an SVG QR code).
#[tracing::instrument(skip_all)]
pub(super) async fn create(
    State(app): State<AppState>,
    ClientAddr(address): ClientAddr,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    uri: Uri,
    Json(body): Json<CreateBody>,
) -> Result<Response, ApiError> {
    require_role(&app, &principal, address, Interaction::Create, Action::C).await?;
    let questionnaire = body.questionnaire.trim();
    if !crate::questionnaires::is_valid_id(questionnaire)
        || crate::questionnaires::read(&app.db, questionnaire)
            .await?
            .is_none()
    {
        return Err(invalid("questionnaire", "No such Questionnaire"));
    }
    let appointment = match body.appointment {
        Some(a) if date_time(&a) => Some(a),
        Some(_) => {
            return Err(invalid(
                "appointment",
                "Give the appointment as a FHIR dateTime (2026-12-01T09:30:00-05:00)",
            ));
        }
        None => None,
    };
    let hours = match body.expires_in_hours {
        Some(0) => return Err(invalid("expiresInHours", "Give at least one hour")),
        Some(h) => h.min(MAX_HOURS),
        None => DEFAULT_HOURS,
    };
    let typed = match body.birth_date.as_deref() {
        Some(text) => Some(
            full_date(text)
                .ok_or_else(|| invalid("birthDate", "Give the birth date as YYYY-MM-DD"))?,
        ),
        None => None,
    };
    let now = app.clock.now();
    let patient = match body.patient.as_deref() {
        Some(reference) => {
            let id = reference
                .strip_prefix("Patient/")
                .filter(|id| Reference::parse(&format!("Patient/{id}")).is_some())
                .ok_or_else(|| invalid("patient", "Give the patient as Patient/{id}"))?;
            let chart = app.emr.read_patient(id).await.map_err(|e| {
                tracing::error!(error = %e, "the patient's chart could not be read");
                ApiError::Unavailable
            })?;
            let chart = chart.ok_or_else(|| invalid("patient", "No such patient"))?;
            Some((id.to_owned(), chart))
        }
        None => None,
    };
    // The birth date to confirm: the chart's, else what the front desk typed.
    let birth_date = patient
        .as_ref()
        .and_then(|(_, chart)| chart.get("birthDate").and_then(Value::as_str))
        .and_then(full_date)
        .or(typed)
        .ok_or_else(|| {
            invalid(
                "birthDate",
                "Give the patient's birth date (YYYY-MM-DD): the patient confirms it before anything else",
            )
        })?;
    let name = match &patient {
        Some((_, chart)) => chart_name(chart),
        None => match body.name.as_deref().map(str::trim) {
            Some(name) if name.chars().count() > MAX_NAME => {
                return Err(invalid("name", "Give a name of at most 200 characters"));
            }
            Some(name) if !name.is_empty() => Some(name.to_owned()),
            _ => None,
        },
    };
    let new = NewInvitation {
        patient: patient.map(|(id, _)| id),
        name,
        questionnaire: questionnaire.to_owned(),
        appointment,
        birth_date,
        lifetime: Duration::from_secs(u64::from(hours) * 3600),
    };
    let mut tx = crate::db::begin_write(&app.db).await?;
    let created = invitation::create(&mut tx, now, &principal.name, &new).await?;
    let patient_ref = new
        .patient
        .as_deref()
        .and_then(|p| Reference::parse(&format!("Patient/{p}")));
    let mut event = Event::new(Kind::Rest(Interaction::Create), Action::C, Outcome::Success)
        .by(Some(principal.agent()))
        .from(address)
        .about(SYSTEM, &created.id);
    if let Some(reference) = patient_ref.clone() {
        // The chart was read for its birth date.
        let read = Event::new(Kind::Rest(Interaction::Read), Action::R, Outcome::Success)
            .by(Some(principal.agent()))
            .from(address)
            .on(reference.clone());
        audit::record(&mut tx, now, &read).await?;
        event = event.on(reference);
    }
    audit::record(&mut tx, now, &event).await?;
    tx.commit().await?;
    let expires = std::time::UNIX_EPOCH
        + Duration::from_millis(u64::try_from(created.expires_at).unwrap_or(0));
    let link = format!("{}/i#{}", public_base(&app, &headers, &uri), created.token);
    let body = json!({
        "invitation": created.id,
        "qr": qr_svg(&link),
        "link": link,
        "expires": fhir_instant(expires),
    });
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// `GET /api/staff/forms`: the forms the front desk may send, `{"forms": [{id,
/// title}]}`, by title (retired ones left out).
#[tracing::instrument(skip_all)]
pub(super) async fn forms(State(app): State<AppState>) -> Result<Response, ApiError> {
    let forms: Vec<Value> = crate::questionnaires::titles(&app.db)
        .await?
        .into_iter()
        .map(|(id, title)| json!({"id": id, "title": title}))
        .collect();
    Ok(axum::Json(json!({"forms": forms})).into_response())
}

/// How many invitations the list shows.
const LIST_LIMIT: i64 = 200;

/// `GET /api/staff/invitations`: the most recent invitations, newest first, with
/// their status (`sent`, `opened`, `used`, `expired`, `locked`, `cancelled`).
#[tracing::instrument(skip_all)]
pub(super) async fn list(
    State(app): State<AppState>,
    ClientAddr(address): ClientAddr,
    Authenticated(principal): Authenticated,
) -> Result<Response, ApiError> {
    require_role(&app, &principal, address, Interaction::Search, Action::R).await?;
    let now = app.clock.now();
    let now_ms = unix_ms(now);
    let rows = {
        let mut conn = app.db.acquire().await?;
        invitation::recent(&mut conn, LIST_LIMIT).await?
    };
    let at = |ms: i64| {
        fhir_instant(std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
    };
    let items: Vec<Value> = rows
        .iter()
        .map(|i| {
            json!({
                "invitation": i.id,
                "patient": i.patient_ref().map(|r| r.as_str().to_owned()),
                "name": i.name,
                "questionnaire": i.questionnaire,
                "appointment": i.appointment,
                "status": i.status(now_ms).code(),
                "failedTries": i.failures,
                "birthDateConfirmed": i.confirmed(),
                "created": at(i.created_at),
                "createdBy": i.created_by,
                "expires": at(i.expires_at),
            })
        })
        .collect();
    // The list names the invited patients: each of them was read.
    let mut shown: Vec<Reference> = rows.iter().filter_map(Invitation::patient_ref).collect();
    shown.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    shown.dedup_by(|a, b| a.as_str() == b.as_str());
    let event = Event::new(Kind::Rest(Interaction::Search), Action::R, Outcome::Success)
        .by(Some(principal.agent()))
        .from(address)
        .on_all(shown);
    audit::record_alone(&app.db, now, &event).await?;
    Ok(axum::Json(json!({"invitations": items})).into_response())
}

/// `DELETE /api/staff/invitations/{id}`: cancels it (204); 404 for no such
/// invitation, 422 (`conflict`) for one already used or cancelled.
#[tracing::instrument(skip_all)]
pub(super) async fn cancel(
    State(app): State<AppState>,
    ClientAddr(address): ClientAddr,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_role(&app, &principal, address, Interaction::Delete, Action::D).await?;
    let now = app.clock.now();
    let mut tx = crate::db::begin_write(&app.db).await?;
    let Some(found) = invitation::by_id(&mut tx, &id).await? else {
        return Err(ApiError::NotFound);
    };
    if !invitation::cancel(&mut tx, now, &id).await? {
        return Err(ApiError::Unprocessable(vec![Issue::error(
            IssueType::Conflict,
            "This invitation was already used or cancelled",
        )]));
    }
    let mut event = Event::new(Kind::Rest(Interaction::Delete), Action::D, Outcome::Success)
        .by(Some(principal.agent()))
        .from(address)
        .about(SYSTEM, &id);
    if let Some(reference) = found.patient_ref() {
        event = event.on(reference);
    }
    audit::record(&mut tx, now, &event).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The body of `POST /api/invitation/open`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OpenBody {
    token: String,
}

// By hand: the token never reaches a log.
impl std::fmt::Debug for OpenBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenBody").finish_non_exhaustive()
    }
}

fn with_cookie(mut response: Response, cookie: &str) -> Result<Response, ApiError> {
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(cookie)
            .map_err(|_| AuthError::Internal("a cookie that is not a header value"))?,
    );
    Ok(response)
}

/// `POST /api/invitation/open` `{"token"}`: sets the invitation cookie and
/// answers `{"confirm": "birthDate"}`, nothing about the patient. Any token that
/// cannot be opened gets the one 401 ([`InviteError::Invalid`]), audited.
#[tracing::instrument(skip_all)]
pub(super) async fn open(
    State(app): State<AppState>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    uri: Uri,
    Json(body): Json<OpenBody>,
) -> Result<Response, ApiError> {
    same_origin(&headers, &uri)?;
    let now = app.clock.now();
    let mut tx = crate::db::begin_write(&app.db).await?;
    match invitation::open(&mut tx, now, body.token.trim()).await {
        Ok((cookie, lifetime, opened)) => {
            let event = Event::new(Kind::Login, Action::E, Outcome::Success)
                .by(Some(invitation::agent(&opened.id)))
                .from(address)
                .about(SYSTEM, &opened.id);
            audit::record(&mut tx, now, &event).await?;
            tx.commit().await?;
            let response = axum::Json(json!({"confirm": "birthDate"})).into_response();
            with_cookie(response, &invitation::set_cookie(&cookie, lifetime))
        }
        Err(InviteError::Invalid) => {
            drop(tx);
            // Which token was tried is not recorded: it may be a live one mistyped.
            let event = Event::new(Kind::Login, Action::E, Outcome::MinorFailure).from(address);
            audit::record_alone(&app.db, now, &event).await?;
            Err(InviteError::Invalid.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// The body of `POST /api/invitation/confirm`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ConfirmBody {
    birth_date: String,
}

// By hand: a birth date is patient data.
impl std::fmt::Debug for ConfirmBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfirmBody").finish_non_exhaustive()
    }
}

/// `POST /api/invitation/confirm` `{"birthDate"}` with the cookie: 200 `{}` when
/// it matches; 401 with the tries left when not; 423 once five were wrong (and
/// for every try after). Each try is audited.
#[tracing::instrument(skip_all)]
pub(super) async fn confirm(
    State(app): State<AppState>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    uri: Uri,
    Json(body): Json<ConfirmBody>,
) -> Result<Response, ApiError> {
    same_origin(&headers, &uri)?;
    let now = app.clock.now();
    let Some(birth_date) = full_date(body.birth_date.trim()) else {
        return Err(ApiError::Unprocessable(vec![
            Issue::error(IssueType::Value, "Give the birth date as YYYY-MM-DD").at("birthDate"),
        ]));
    };
    let mut tx = crate::db::begin_write(&app.db).await?;
    let holder = match invitation::holder(&mut tx, now, &headers).await {
        Ok(holder) => holder,
        Err(InviteError::Locked) => {
            drop(tx);
            // A try at a locked invitation: refused whatever the date, audited.
            if let Some(cookie) = invitation::cookie_value(&headers) {
                tracing::warn!(
                    cookie.len = cookie.len(),
                    "a locked invitation was tried again"
                );
            }
            let event = Event::new(Kind::Login, Action::E, Outcome::SeriousFailure).from(address);
            audit::record_alone(&app.db, now, &event).await?;
            return Err(InviteError::Locked.into());
        }
        Err(e) => return Err(e.into()),
    };
    let id = holder.invitation.id.clone();
    let who = Some(invitation::agent(&id));
    let result = invitation::confirm(&mut tx, now, &holder, &birth_date).await?;
    let (outcome, kind) = match result {
        Confirmation::Confirmed => (Outcome::Success, Kind::Login),
        Confirmation::Wrong(_) => (Outcome::MinorFailure, Kind::Login),
        Confirmation::LockedNow => (Outcome::SeriousFailure, Kind::Lockout),
    };
    let event = Event::new(kind, Action::E, outcome)
        .by(who)
        .from(address)
        .about(SYSTEM, &id);
    audit::record(&mut tx, now, &event).await?;
    tx.commit().await?;
    match result {
        Confirmation::Confirmed => Ok(axum::Json(json!({})).into_response()),
        Confirmation::Wrong(tries_left) => Err(InviteError::WrongBirthDate { tries_left }.into()),
        Confirmation::LockedNow => {
            tracing::warn!("an invitation was locked after repeated wrong birth dates");
            Err(InviteError::Locked.into())
        }
    }
}

/// `GET /api/invitation/form` with a confirmed cookie: `{questionnaire, form,
/// draft, response}`: the compiled form (as `GET /api/forms/{id}` gives it), and
/// for a known patient the answers their chart gives the form's
/// `initialExpression`s (`%patient`, SDC populate), as the browser's draft and as
/// an in-progress QuestionnaireResponse. Reading the chart is audited.
#[tracing::instrument(skip_all)]
pub(super) async fn form(
    State(app): State<AppState>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let now = app.clock.now();
    let holder = {
        let mut conn = app.db.acquire().await?;
        invitation::holder(&mut conn, now, &headers).await?
    };
    if !holder.confirmed {
        return Err(InviteError::NotConfirmed.into());
    }
    let invitation = holder.invitation;
    let text = crate::questionnaires::compiled_form(&app.db, &invitation.questionnaire)
        .await?
        .ok_or(ApiError::NotFound)?;
    let compiled: shared::form::CompiledForm = serde_json::from_str(&text).map_err(|e| {
        tracing::error!(error = %e, "a stored compiled form does not read");
        ApiError::Unavailable
    })?;
    let chart = match &invitation.patient {
        Some(patient) => {
            let chart = app.emr.read_patient(patient).await.map_err(|e| {
                tracing::error!(error = %e, "the invited patient's chart could not be read");
                ApiError::Unavailable
            })?;
            let mut event = Event::new(Kind::Rest(Interaction::Read), Action::R, Outcome::Success)
                .by(Some(invitation::agent(&invitation.id)))
                .from(address)
                .about(SYSTEM, &invitation.id);
            if let Some(reference) = invitation.patient_ref() {
                event = event.on(reference);
            }
            audit::record_alone(&app.db, now, &event).await?;
            chart
        }
        None => None,
    };
    // A patient the clinic does not know yet: what the front desk typed (name
    // and birth date) fills the form in, as a chart would.
    let prefilled_from = if chart.is_some() {
        "chart"
    } else {
        "front-desk"
    };
    let chart = chart.or_else(|| Some(typed_patient(&invitation)));
    // The server's one prefill, as `Questionnaire/{id}/$populate` gives it.
    let questionnaire = format!("Questionnaire/{}", invitation.questionnaire);
    let subject = invitation.patient_ref();
    let (draft, response) = super::questionnaire_populate::populate(
        &compiled.form,
        &questionnaire,
        chart.as_ref(),
        subject.as_ref().map(|r| r.as_str()),
    )?;
    let body = json!({
        "questionnaire": questionnaire,
        "form": serde_json::from_str::<Value>(&text).map_err(|_| ApiError::Unavailable)?,
        "draft": draft,
        "response": response,
        "prefilledFrom": prefilled_from,
    });
    Ok(axum::Json(body).into_response())
}

/// A Patient of what the front desk typed for someone with no chart: the name
/// (as the staff list keeps it, `Family, Given`) and the birth date.
fn typed_patient(invitation: &Invitation) -> Value {
    let mut patient = json!({"resourceType": "Patient", "birthDate": invitation.birth_date()});
    if let Some(name) = invitation.name.as_deref() {
        let (family, given) = name.split_once(',').unwrap_or((name, ""));
        let mut human = json!({"family": family.trim()});
        if !given.trim().is_empty() {
            human["given"] = json!([given.trim()]);
        }
        patient["name"] = json!([human]);
    }
    patient
}

/// The `Set-Cookie` of an accepted invited intake: the cookie is spent.
pub(super) fn spent(response: Response) -> Result<Response, ApiError> {
    with_cookie(response, &invitation::clear_cookie())
}

/// Whether the request came from this server's own pages (its `Origin`, when it
/// has one, is the host it was sent to): the patient's cookie is `SameSite=Strict`
/// too, this is the second layer.
fn same_origin(headers: &HeaderMap, uri: &axum::http::Uri) -> Result<(), ApiError> {
    if crate::auth::session::same_origin(headers, uri.authority().map(|a| a.as_str())) {
        Ok(())
    } else {
        Err(InviteError::CrossSite.into())
    }
}

/// The invitation cookie of a submission, checked: the [`Invited`]
/// for the intake pipeline (with the known patient's chart from the EMR). `None`
/// when the request has no invitation cookie (the public flow).
pub(super) async fn for_submission(
    app: &AppState,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    questionnaire: Option<&str>,
) -> Result<Option<Invited>, ApiError> {
    if invitation::cookie_value(headers).is_none() {
        return Ok(None);
    }
    same_origin(headers, uri)?;
    let holder = {
        let mut conn = app.db.acquire().await?;
        invitation::holder(&mut conn, app.clock.now(), headers).await?
    };
    if !holder.confirmed {
        return Err(InviteError::NotConfirmed.into());
    }
    let invitation = holder.invitation;
    if !answers_form(app, &invitation.questionnaire, questionnaire).await? {
        return Err(ApiError::Unprocessable(vec![
            Issue::error(
                IssueType::BusinessRule,
                "This invitation is for another form",
            )
            .at("QuestionnaireResponse.questionnaire"),
        ]));
    }
    let chart = match &invitation.patient {
        Some(patient) => app.emr.read_patient(patient).await.map_err(|e| {
            tracing::error!(error = %e, "the invited patient's chart could not be read");
            ApiError::Unavailable
        })?,
        None => None,
    };
    Ok(Some(Invited {
        invitation: invitation.id,
        patient: invitation.patient,
        chart,
    }))
}

/// Whether `given` (a response's `questionnaire`) names the stored Questionnaire
/// `id`: `Questionnaire/{id}`, or its canonical URL.
async fn answers_form(app: &AppState, id: &str, given: Option<&str>) -> Result<bool, sqlx::Error> {
    let Some(given) = given else {
        return Ok(false);
    };
    if given == format!("Questionnaire/{id}") {
        return Ok(true);
    }
    let url = given.split('|').next().unwrap_or(given);
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM resource WHERE resource_type = 'Questionnaire' AND id = ? AND url = ?",
    )
    .bind(id)
    .bind(url)
    .fetch_optional(&app.db)
    .await?;
    Ok(found.is_some())
}
