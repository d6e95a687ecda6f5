//! The administrators' screen over HTTP: staff accounts (`/api/admin/users`) and
//! system tokens (`/api/admin/tokens`). Admins only (the access policy, and the
//! admin extractors again); every change is on the audit trail with the admin as
//! its agent. A generated password or token is in the one answer that made it,
//! never in a list, a log line or the database.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::extract::{AdminChange, AdminRead};
use crate::api::error::ApiError;
use crate::api::extract::Json;
use crate::auth::tokens::TokenError;
use crate::auth::users::{AddError, ChangeError};
use crate::auth::{PrincipalKind, Role, Username, tokens, users};
use crate::fhir::outcome::{Issue, IssueType};
use crate::state::AppState;

fn invalid(at: &str, problem: &str) -> ApiError {
    ApiError::Unprocessable(vec![Issue::error(IssueType::Value, problem).at(at)])
}

fn taken(at: &str, problem: &str) -> ApiError {
    ApiError::Conflict(Issue::error(IssueType::Duplicate, problem).at(at))
}

const USERNAME_RULE: &str =
    "A username is 1 to 64 of letters, digits, '.', '_' and '-', starting with a letter or digit";

impl From<AddError> for ApiError {
    fn from(error: AddError) -> Self {
        match error {
            AddError::Duplicate(_) => taken("username", "An account with this username exists"),
            AddError::NotAStaffRole => {
                invalid("role", "A staff role is front-desk, clinician or admin")
            }
            AddError::Auth(error) => error.into(),
        }
    }
}

impl From<ChangeError> for ApiError {
    fn from(error: ChangeError) -> Self {
        match error {
            ChangeError::NotFound => ApiError::NotFound,
            ChangeError::Auth(error) => error.into(),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::Duplicate(_) => taken("name", "A live token has this name"),
            TokenError::NotFound(_) => ApiError::NotFound,
            TokenError::Invalid(problem) => {
                let at = if problem.contains("role") {
                    "role"
                } else {
                    "name"
                };
                invalid(at, problem)
            }
            TokenError::Auth(error) => error.into(),
        }
    }
}

/// A username from the path; one that cannot exist is not found.
fn path_username(name: &str) -> Result<Username, ApiError> {
    Username::parse(name).ok_or(ApiError::NotFound)
}

/// `GET /api/admin/users` (admins): every staff account, by username; never a
/// password or its hash.
pub(super) async fn list_users(
    State(app): State<AppState>,
    _admin: AdminRead,
) -> Result<Response, ApiError> {
    let users = users::list(&app.db).await?;
    Ok(axum::Json(json!({ "users": users })).into_response())
}

/// `POST /api/admin/users`'s body.
#[derive(Debug, Deserialize)]
// Missing fields are empty, so the refusal names the field (serde's own error
// for a missing field says nothing about where).
#[serde(deny_unknown_fields)]
pub(super) struct AddUser {
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
}

/// `POST /api/admin/users` `{username, role}` (admins): 201 with the generated
/// password, shown this once; 409 for a taken name, 422 naming the field for a
/// bad name or role.
#[tracing::instrument(skip_all)]
pub(super) async fn add_user(
    State(app): State<AppState>,
    AdminChange(principal): AdminChange,
    Json(body): Json<AddUser>,
) -> Result<Response, ApiError> {
    let username =
        Username::parse(body.username.trim()).ok_or_else(|| invalid("username", USERNAME_RULE))?;
    let role = Role::parse_staff(&body.role)
        .ok_or_else(|| invalid("role", "A staff role is front-desk, clinician or admin"))?;
    let password =
        users::add_by(&app.db, app.clock.now(), &username, role, principal.agent()).await?;
    tracing::info!("staff account added");
    let body = json!({
        "username": username.as_str(),
        "role": role.code(),
        "password": password,
    });
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// `POST /api/admin/users/{username}/disable` and `/enable` (admins): 204; the
/// disabled user's sessions end at once. An admin cannot disable their own
/// account (422): someone must be left to enable it.
async fn set_disabled(
    app: &AppState,
    principal: &crate::auth::Principal,
    username: &str,
    disabled: bool,
) -> Result<Response, ApiError> {
    let username = path_username(username)?;
    if disabled
        && matches!(principal.kind, PrincipalKind::User(_))
        && principal.name.eq_ignore_ascii_case(username.as_str())
    {
        return Err(invalid("username", "You cannot disable your own account"));
    }
    users::set_disabled(
        &app.db,
        app.clock.now(),
        &username,
        disabled,
        principal.agent(),
    )
    .await?;
    tracing::info!(disabled, "staff account changed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/admin/users/{username}/disable` (admins).
#[tracing::instrument(skip_all)]
pub(super) async fn disable_user(
    State(app): State<AppState>,
    AdminChange(principal): AdminChange,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    set_disabled(&app, &principal, &username, true).await
}

/// `POST /api/admin/users/{username}/enable` (admins).
#[tracing::instrument(skip_all)]
pub(super) async fn enable_user(
    State(app): State<AppState>,
    AdminChange(principal): AdminChange,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    set_disabled(&app, &principal, &username, false).await
}

/// `POST /api/admin/users/{username}/password` (admins): 200 with a new generated
/// password, shown this once; the old one stops working and the user's sessions
/// end. 404 for no such account.
#[tracing::instrument(skip_all)]
pub(super) async fn reset_password(
    State(app): State<AppState>,
    AdminChange(principal): AdminChange,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    let username = path_username(&username)?;
    let password =
        users::reset_password(&app.db, app.clock.now(), &username, principal.agent()).await?;
    tracing::info!("staff password reset");
    Ok(axum::Json(json!({ "username": username.as_str(), "password": password })).into_response())
}

/// `GET /api/admin/tokens` (admins): every token, revoked ones included, newest
/// first; never the token or its hash.
pub(super) async fn list_tokens(
    State(app): State<AppState>,
    _admin: AdminRead,
) -> Result<Response, ApiError> {
    let tokens = tokens::list(&app.db).await?;
    Ok(axum::Json(json!({ "tokens": tokens })).into_response())
}

/// `POST /api/admin/tokens`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateToken {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

/// `POST /api/admin/tokens` `{name, role}` (admins; role `system` or `admin`):
/// 201 with the token, shown this once; 409 for a live token's name, 422 naming
/// the field for a bad name or role.
#[tracing::instrument(skip_all)]
pub(super) async fn create_token(
    State(app): State<AppState>,
    AdminChange(principal): AdminChange,
    Json(body): Json<CreateToken>,
) -> Result<Response, ApiError> {
    let name = body.name.trim();
    let role = Role::parse_token(&body.role)
        .ok_or_else(|| invalid("role", "A token's role is system or admin"))?;
    let token = tokens::create_by(&app.db, app.clock.now(), name, role, principal.agent()).await?;
    tracing::info!("token created");
    let body = json!({ "name": name, "role": role.code(), "token": token });
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// `DELETE /api/admin/tokens/{name}` (admins): revokes it (204); 404 if no live
/// token has that name.
#[tracing::instrument(skip_all)]
pub(super) async fn revoke_token(
    State(app): State<AppState>,
    AdminChange(principal): AdminChange,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    tokens::revoke_by(&app.db, app.clock.now(), &name, principal.agent()).await?;
    tracing::info!("token revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}
