//! HTTP plumbing shared by every route: the JSON extractor and the headers every
//! response carries.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::de::DeserializeOwned;
use serde_json::error::Category;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::ApiError;
use crate::fhir::outcome::{Issue, IssueType};

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
    crate::error::outcome_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &[Issue::error(
            IssueType::Exception,
            "The server failed on this request; nothing more is known here",
        )],
    )
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
