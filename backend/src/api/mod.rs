//! The HTTP surface: the JSON API under `/api` and the FHIR API under `/fhir`, one
//! file per resource, all routes here.

mod admin;
mod demographics;
pub mod error;
pub mod extract;
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
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, Request, header};
use axum::routing::{delete, get, post, put};
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::api::error::ApiError;
use crate::http;
use crate::state::AppState;

/// The whole HTTP surface.
pub fn router(state: AppState, max_body_bytes: usize, body_timeout: std::time::Duration) -> Router {
    // Who may call what, checked once matched (the policy reads the route's pattern).
    let policy = axum::middleware::from_fn_with_state(state.clone(), crate::auth::policy::enforce);
    let mut router = Router::new()
        .nest(
            "/api",
            api_routes()
                .route_layer(policy.clone())
                .layer(DefaultBodyLimit::max(max_body_bytes)),
        )
        .nest("/fhir", fhir_routes().route_layer(policy))
        .fallback(
            |State(app): State<AppState>, request: axum::extract::Request| async move {
                crate::static_files::serve(&app.static_files, request).await
            },
        )
        .with_state(state)
        .layer(CompressionLayer::new());
    for layer in http::security_headers() {
        router = router.layer(layer);
    }
    // A body trickled in slower than this fails its read (400), freeing the
    // connection (issue 21).
    let router = router.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        body_timeout,
    ));
    // Inside the trace layer, so a panic's 500 is logged like any answer.
    let router = router.layer(http::catch_panic());
    // Spans carry the method and the route pattern, never the raw URI: paths and
    // queries may hold identifiers or tokens.
    router.layer(
        TraceLayer::new_for_http()
            .make_span_with(|request: &Request<_>| {
                let route = request
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map_or("(static)", |p| p.as_str());
                tracing::info_span!("http", http.method = %request.method(), http.route = route)
            })
            .on_response(DefaultOnResponse::new().level(Level::INFO)),
    )
}

/// Every `/api` route.
fn api_routes() -> Router<AppState> {
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
/// [`crate::guard`] rewrites it before routing.)
fn fhir_routes() -> Router<AppState> {
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
