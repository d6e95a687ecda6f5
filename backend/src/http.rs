//! HTTP plumbing shared by every route: cookies, the `OperationOutcome` response,
//! the headers every response carries and the answer to a panic.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::fhir::FHIR_JSON;
use crate::fhir::outcome::{self, Issue, IssueType};

/// The value of the cookie `name` in `headers`, if it is there and not empty
/// (the staff session's, a kiosk's, an invitation's).
pub fn cookie<'h>(headers: &'h axum::http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (n, value) = pair.trim().split_once('=')?;
            (n == name && !value.is_empty()).then_some(value)
        })
}

/// The Content-Security-Policy of every response: only our own files; WebAssembly
/// may compile ('wasm-unsafe-eval'), and nothing inline runs.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Layers that add the security headers to every response that lacks them.
pub fn security_headers() -> [SetResponseHeaderLayer<HeaderValue>; 6] {
    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    [
        header(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        header(header::REFERRER_POLICY, "no-referrer"),
        header(header::X_FRAME_OPTIONS, "DENY"),
        header(
            HeaderName::from_static("permissions-policy"),
            "camera=(self), microphone=(), geolocation=(), payment=()",
        ),
        header(
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ]
}

/// A panic anywhere in a handler answers 500 with an `OperationOutcome` instead of
/// a dropped connection. The panic's payload is dropped unread: its message can
/// hold the request's values (`byte index 5 is not a char boundary ... of
/// `2020é0``), which are patient data. The hook in [`crate::telemetry`] logs only
/// where it happened.
pub fn catch_panic() -> tower_http::catch_panic::CatchPanicLayer<fn(PanicPayload) -> Response> {
    tower_http::catch_panic::CatchPanicLayer::custom(panic_response as fn(PanicPayload) -> Response)
}

/// What a panic carries (never read: see [`catch_panic`]).
pub type PanicPayload = Box<dyn std::any::Any + Send + 'static>;

fn panic_response(_payload: PanicPayload) -> Response {
    outcome_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &[Issue::error(
            IssueType::Exception,
            "The server failed on this request; nothing more is known here",
        )],
    )
}

/// A response whose body is an `OperationOutcome`.
pub fn outcome_response(status: StatusCode, issues: &[Issue]) -> Response {
    let mut response = (status, outcome::to_json(issues)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response
}
