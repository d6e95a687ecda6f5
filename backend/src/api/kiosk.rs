//! Kiosks over HTTP: admins add, list and revoke them (`/api/admin/kiosks`); a
//! kiosk's browser enrols with its code (`POST /api/kiosk/enroll`) and reads its
//! settings and forms (`GET /api/kiosk/me`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::error::ApiError;
use crate::api::extract::{AdminChange, AdminRead, Json};
use crate::audit::{self, Action, Event, Kind, Outcome};
use crate::auth::{AuthError, ClientAddr, session};
use crate::clock::fhir_instant;
use crate::fhir::outcome::{Issue, IssueType};
use crate::kiosk::{self, Device, Kiosk, KioskError, NewKiosk};
use crate::state::AppState;
use shared::kiosk::{KioskForm, KioskMe};

impl From<KioskError> for ApiError {
    fn from(error: KioskError) -> Self {
        match error {
            KioskError::Invalid { at, problem } => {
                ApiError::Unprocessable(vec![Issue::error(IssueType::Value, problem).at(at)])
            }
            KioskError::Duplicate => ApiError::Unprocessable(vec![
                Issue::error(IssueType::Duplicate, "A kiosk with this name exists").at("name"),
            ]),
            KioskError::NotFound => ApiError::NotFound,
            KioskError::Auth(error) => error.into(),
        }
    }
}

/// `POST /api/admin/kiosks`'s body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct AddKiosk {
    name: String,
    forms: Vec<String>,
    idle_seconds: Option<u32>,
    warn_seconds: Option<u32>,
}

/// `POST /api/admin/kiosks` (admins): 201 with the kiosk and its one-time
/// enrolment `code`; 422 naming the field for a bad name, form or setting.
#[tracing::instrument(skip_all)]
pub(super) async fn add(
    State(app): State<AppState>,
    AdminChange(principal): AdminChange,
    Json(body): Json<AddKiosk>,
) -> Result<Response, ApiError> {
    let now = app.clock.now();
    let new = NewKiosk {
        name: body.name,
        forms: body.forms,
        idle_seconds: body.idle_seconds.unwrap_or(kiosk::DEFAULT_IDLE_SECONDS),
        warn_seconds: body.warn_seconds.unwrap_or(kiosk::DEFAULT_WARN_SECONDS),
    };
    let added = kiosk::add(&app.db, now, &new, principal.agent()).await?;
    tracing::info!(kiosk.id = added.id, "kiosk added");
    let body = json!({
        "id": added.id,
        "name": new.name,
        "forms": new.forms,
        "idleSeconds": new.idle_seconds,
        "warnSeconds": new.warn_seconds,
        "code": added.code,
        "codeExpiresAt": fhir_instant(added.code_expires_at),
    });
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// `GET /api/admin/kiosks` (admins): every kiosk, revoked ones included, newest
/// first; never a code or a secret.
pub(super) async fn list(
    State(app): State<AppState>,
    _admin: AdminRead,
) -> Result<Response, ApiError> {
    let kiosks = kiosk::list(&app.db).await?;
    Ok(axum::Json(json!({ "kiosks": kiosks })).into_response())
}

/// `DELETE /api/admin/kiosks/{id}` (admins): revokes it (204); 404 if no live
/// kiosk has that id.
#[tracing::instrument(skip_all)]
pub(super) async fn revoke(
    State(app): State<AppState>,
    AdminChange(principal): AdminChange,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound)?;
    kiosk::revoke(&app.db, app.clock.now(), id, principal.agent()).await?;
    tracing::info!(kiosk.id = id, "kiosk revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/kiosk/enroll`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Enroll {
    code: String,
}

/// What a kiosk's browser needs: its name, settings and forms (id and title).
async fn me_body(app: &AppState, device: &Device) -> Result<KioskMe, sqlx::Error> {
    let mut forms = Vec::new();
    for id in device.forms(&app.db).await? {
        // A form deleted since it was assigned is left out, not shown broken.
        let Some(compiled) = crate::questionnaires::compiled_form(&app.db, &id).await? else {
            continue;
        };
        let title = serde_json::from_str::<Value>(&compiled)
            .ok()
            .and_then(|c| {
                c.pointer("/form/title")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| id.clone());
        forms.push(KioskForm { id, title });
    }
    Ok(KioskMe {
        name: device.name.clone(),
        idle_seconds: device.idle_seconds,
        warn_seconds: device.warn_seconds,
        forms,
    })
}

/// `POST /api/kiosk/enroll` `{"code"}` (anyone holding a code; from this site's
/// pages only): 200 with what `GET /api/kiosk/me` says and the device cookie; 401,
/// one message, for a code that is wrong, used, expired or revoked.
#[tracing::instrument(skip_all)]
pub(super) async fn enroll(
    State(app): State<AppState>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    uri: Uri,
    Json(body): Json<Enroll>,
) -> Result<Response, ApiError> {
    let now = app.clock.now();
    if !session::same_origin(&headers, uri.authority().map(|a| a.as_str())) {
        let event = Event::new(Kind::CsrfRefused, Action::E, Outcome::SeriousFailure).from(address);
        audit::record_alone(&app.db, now, &event).await?;
        return Err(AuthError::CsrfRefused.into());
    }
    let Some((device, secret)) = kiosk::enroll(&app.db, now, &body.code, address).await? else {
        return Err(AuthError::Unauthenticated.into());
    };
    tracing::info!(kiosk.id = device.id, "kiosk enrolled");
    let body = me_body(&app, &device).await?;
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&kiosk::set_cookie(&secret))
            .map_err(|_| AuthError::Internal("a device secret that is not a header value"))?,
    );
    Ok(response)
}

/// `GET /api/kiosk/me` (an enrolled kiosk): its name, `idleSeconds`,
/// `warnSeconds` and `forms` (`[{id, title}]`); 401 (and the cookie cleared) for
/// a browser that is not a live kiosk.
pub(super) async fn me(
    State(app): State<AppState>,
    device: Result<Kiosk, AuthError>,
) -> Result<Response, ApiError> {
    match device {
        Ok(Kiosk(device)) => Ok(axum::Json(me_body(&app, &device).await?).into_response()),
        Err(AuthError::Unauthenticated) => {
            let mut response = AuthError::Unauthenticated.into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_str(&kiosk::clear_cookie())
                    .map_err(|_| AuthError::Internal("a cookie that is not a header value"))?,
            );
            Ok(response)
        }
        Err(other) => Err(other.into()),
    }
}
