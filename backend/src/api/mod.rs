//! The JSON API under `/api`: one file per resource, all routes here.

mod actor;
mod admin;
mod demographics;
mod fhir;
mod forms;
mod health;
mod intake;
mod invitation;
mod kiosk;
mod patient;
mod questionnaire;
mod questionnaire_populate;
mod questionnaire_response;
mod review;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::routing::{delete, get, post, put};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::app::AppState;
use crate::error::ApiError;

/// Every `/api` route.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health::get))
        .route("/demographics/validate", post(demographics::validate))
        .route("/forms/{id}", get(forms::get))
        .route("/intakes", post(intake::submit))
        .route("/intakes/{id}", get(intake::get))
        .route("/staff/login", post(crate::auth::handlers::login))
        .route("/staff/logout", post(crate::auth::handlers::logout))
        .route("/staff/me", get(crate::auth::handlers::me))
        .route("/staff/review", get(review::queue))
        .route("/staff/review/{task}", get(review::item))
        .route("/staff/review/{task}/decision", post(review::decide))
        .route("/admin/kiosks", get(kiosk::list).post(kiosk::add))
        .route("/admin/kiosks/{id}", delete(kiosk::revoke))
        .route("/admin/users", get(admin::list_users).post(admin::add_user))
        .route("/admin/users/{username}/disable", post(admin::disable_user))
        .route("/admin/users/{username}/enable", post(admin::enable_user))
        .route(
            "/admin/users/{username}/password",
            post(admin::reset_password),
        )
        .route(
            "/admin/tokens",
            get(admin::list_tokens).post(admin::create_token),
        )
        .route("/admin/tokens/{name}", delete(admin::revoke_token))
        .route("/kiosk/enroll", post(kiosk::enroll))
        .route("/kiosk/me", get(kiosk::me))
        .route(
            "/staff/invitations",
            post(invitation::create).get(invitation::list),
        )
        .route("/staff/invitations/{id}", delete(invitation::cancel))
        .route("/staff/forms", get(invitation::forms))
        .route("/invitation/open", post(invitation::open))
        .route("/invitation/confirm", post(invitation::confirm))
        .route("/invitation/form", get(invitation::form))
        .fallback(|| async { ApiError::NotFound })
        // Answers may carry patient data: no cache, in the browser or between, keeps them.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// Largest FHIR resource accepted: real Questionnaires reach a few hundred kB.
pub const MAX_FHIR_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Every `/fhir` route: the embedded FHIR R4 store. (`/fhir/` is `/fhir` too:
/// [`crate::app`] rewrites it before routing.)
pub fn fhir_router() -> Router<AppState> {
    Router::new()
        .route("/", post(fhir::bundle))
        .route("/metadata", get(fhir::metadata))
        .route("/Patient/$match", post(patient::match_))
        .route("/AuditEvent", get(crate::auth::handlers::audit_events))
        .route(
            "/Questionnaire",
            get(questionnaire::search).post(questionnaire::create),
        )
        .route(
            "/QuestionnaireResponse/$validate",
            post(questionnaire_response::validate),
        )
        .route(
            "/QuestionnaireResponse/$extract",
            post(questionnaire_response::extract),
        )
        .route(
            "/QuestionnaireResponse/{id}/$validate",
            post(questionnaire_response::validate_stored),
        )
        .route(
            "/QuestionnaireResponse/{id}/$extract",
            post(questionnaire_response::extract_stored),
        )
        .route(
            "/Questionnaire/$validate",
            post(fhir::validate_questionnaire),
        )
        .route(
            "/Questionnaire/$populate",
            post(questionnaire_populate::by_canonical),
        )
        .route(
            "/Questionnaire/{id}/$populate",
            post(questionnaire_populate::by_id),
        )
        .route(
            "/Questionnaire/{id}",
            put(questionnaire::put).get(questionnaire::read),
        )
        .route("/{type}", get(fhir::search).post(fhir::create))
        .route("/{type}/_search", post(fhir::search_post))
        .route("/{type}/$validate", post(fhir::validate))
        .route("/{type}/{id}", get(fhir::read).put(fhir::update))
        .route("/{type}/{id}/_history", get(fhir::history))
        .route("/{type}/{id}/_history/{version}", get(fhir::vread))
        .fallback(fhir::fallback)
        .layer(axum::middleware::from_fn(fhir::formats))
        .layer(DefaultBodyLimit::max(MAX_FHIR_BODY_BYTES))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}
