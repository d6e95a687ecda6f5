//! Every HTTP call the app makes. Nothing else in the app talks to the network.

use gloo_net::http::Request;
use shared::Demographics;
use shared::health::Health;
use shared::outcome::OperationOutcome;

/// How a call to the server ended, in the terms the pages need.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Answer<T> {
    /// The server accepted and answered.
    Accepted(T),
    /// The server refused, with its reasons.
    Refused(OperationOutcome),
    /// No usable answer (offline, server down, unexpected reply).
    Unreachable,
}

/// `POST /api/demographics/validate`: the server's check of the same rules.
pub(crate) async fn validate_demographics(demographics: &Demographics) -> Answer<Demographics> {
    let Ok(request) = Request::post("/api/demographics/validate").json(demographics) else {
        return Answer::Unreachable;
    };
    let Ok(response) = request.send().await else {
        return Answer::Unreachable;
    };
    match response.status() {
        200 => response
            .json()
            .await
            .map_or(Answer::Unreachable, Answer::Accepted),
        400..=499 => response
            .json()
            .await
            .map_or(Answer::Unreachable, Answer::Refused),
        _ => Answer::Unreachable,
    }
}

/// `GET /api/health`.
pub(crate) async fn health() -> Option<Health> {
    let response = Request::get("/api/health").send().await.ok()?;
    response.json().await.ok()
}
