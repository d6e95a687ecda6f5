//! The extractors every handler takes its inputs with, in one place: the JSON
//! body ([`Json`]) and the callers ([`Actor`], who reads or writes patient data,
//! with the audit record of it; [`AdminRead`], [`AdminChange`]; the staff
//! session's and the kiosk's are re-exported from where their state lives).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::api::error::ApiError;
use crate::audit::{self, Action, Event, Interaction, Kind, Outcome, Reference};
use crate::auth::{AuthError, Principal, Role};
use crate::fhir::outcome::{Issue, IssueType};
use crate::state::AppState;
use std::net::IpAddr;

pub use crate::auth::session::{Authenticated, ClientAddr, CsrfChecked, StaffSession};
pub use crate::kiosk::{Kiosk, MaybeKiosk};

/// A JSON body, decoded with the path of any bad value kept so the error can name
/// the field. Unlike axum's own extractor, its errors are `OperationOutcome`s, and
/// they never echo the submitted values (which are patient data).
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge
            } else {
                ApiError::Malformed(Issue::error(
                    IssueType::Structure,
                    "The body could not be read",
                ))
            }
        })?;
        // serde would build a struct from a JSON list too; every body here is an object.
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some_and(|&b| b != b'{') {
            return Err(ApiError::Unprocessable(vec![Issue::error(
                IssueType::Structure,
                "The body must be a JSON object",
            )]));
        }
        decode(&bytes).map(Json)
    }
}

fn is_json(content_type: Option<&HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.eq_ignore_ascii_case(crate::fhir::FHIR_JSON)
}

/// Decodes `bytes` as a `T`, mapping failures to issues that say where, not what.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        from_serde(error.inner(), (path != ".").then_some(path))
    })?;
    // Trailing data after the value is as malformed as a missing brace.
    deserializer
        .end()
        .map_err(|error| from_serde(&error, None))?;
    Ok(value)
}

fn from_serde(error: &serde_json::Error, path: Option<String>) -> ApiError {
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::Malformed(Issue::error(
            IssueType::Structure,
            format!(
                "The body is not valid JSON (line {}, column {})",
                error.line(),
                error.column()
            ),
        )),
        Category::Data => {
            let issue = Issue::error(
                IssueType::Structure,
                "This value has the wrong type (for example text where a list is expected)",
            );
            ApiError::Unprocessable(vec![match path {
                Some(path) => issue.at(path),
                None => issue,
            }])
        }
    }
}

/// An admin, by bearer token, or by session with the CSRF checks for a change
/// (`change`); anyone else is refused (403, audited) or unauthenticated (401).
async fn admin(parts: &mut Parts, state: &AppState, change: bool) -> Result<Principal, AuthError> {
    let principal = if change && !parts.headers.contains_key(header::AUTHORIZATION) {
        CsrfChecked::from_request_parts(parts, state)
            .await?
            .0
            .principal
    } else {
        Authenticated::from_request_parts(parts, state).await?.0
    };
    if principal.role != Role::Admin {
        let address = ClientAddr::from_request_parts(parts, state)
            .await
            .map_or(None, |a| a.0);
        let event = Event::new(Kind::SecurityAdmin, Action::E, Outcome::MinorFailure)
            .by(Some(principal.agent()))
            .from(address);
        audit::record_alone(&state.db, state.clock.now(), &event).await?;
        return Err(AuthError::Forbidden);
    }
    Ok(principal)
}

/// An admin reading (session or token).
#[derive(Debug)]
pub struct AdminRead;

impl FromRequestParts<AppState> for AdminRead {
    type Rejection = AuthError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AuthError> {
        admin(parts, state, false).await.map(|_| AdminRead)
    }
}

/// An admin changing something (token, or session + CSRF token + Origin).
#[derive(Debug)]
pub struct AdminChange(pub Principal);

impl FromRequestParts<AppState> for AdminChange {
    type Rejection = AuthError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AuthError> {
        admin(parts, state, true).await.map(AdminChange)
    }
}

/// The signed-in user or system client behind a request (found by the access
/// policy), and where it came from.
#[derive(Clone, Debug)]
pub(crate) struct Actor {
    pub(crate) principal: Principal,
    address: Option<IpAddr>,
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AuthError> {
        let Authenticated(principal) = Authenticated::from_request_parts(parts, state).await?;
        let ClientAddr(address) = ClientAddr::from_request_parts(parts, state)
            .await
            .unwrap_or(ClientAddr(None));
        Ok(Self { principal, address })
    }
}

impl Actor {
    /// Records that this actor did `interaction` on `touched`. Patient data goes
    /// out only once its reading is on the record: if the record cannot be
    /// written, the request fails (503) instead.
    pub(crate) async fn record(
        &self,
        app: &AppState,
        interaction: Interaction,
        touched: Vec<Reference>,
    ) -> Result<(), ApiError> {
        let action = match interaction {
            Interaction::Read | Interaction::Search => Action::R,
            Interaction::Create => Action::C,
            Interaction::Update => Action::U,
            Interaction::Delete => Action::D,
        };
        let event = Event::new(Kind::Rest(interaction), action, Outcome::Success)
            .by(Some(self.principal.agent()))
            .from(self.address)
            .on_all(touched);
        audit::record_alone(&app.db, app.clock.now(), &event).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_accepted_are_json_and_fhir_json() {
        let cases = [
            (Some("application/json"), true),
            (Some("application/json; charset=utf-8"), true),
            (Some("application/fhir+json"), true),
            (Some("Application/FHIR+JSON;fhirVersion=4.0"), true),
            (Some("text/plain"), false),
            (Some("application/x-www-form-urlencoded"), false),
            (None, false),
        ];
        for (value, expected) in cases {
            let header = value.map(HeaderValue::from_static);
            assert_eq!(is_json(header.as_ref()), expected, "{value:?}");
        }
    }
}
