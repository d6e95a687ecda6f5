//! Every HTTP call the app makes. Nothing else in the app talks to the network.

use gloo_net::http::Request;
use leptos::prelude::{ReadSignal, Set as _, signal};
use shared::Demographics;
use shared::form::CompiledForm;
use shared::health::Health;
use shared::outcome::OperationOutcome;
use shared::response::QuestionnaireResponse;

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
    match Request::post("/api/demographics/validate").json(demographics) {
        Ok(request) => answer(request).await,
        Err(_) => Answer::Unreachable,
    }
}

/// Sends `request`: 200 is the answer, a 4xx the server's `OperationOutcome`,
/// anything else (or nothing) unreachable.
async fn answer<T: serde::de::DeserializeOwned>(request: gloo_net::http::Request) -> Answer<T> {
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

/// Starts `call` and returns its answer as a signal: `None` while it is on its way.
///
/// (Instead of `LocalResource` + `Suspense`: the pages load once, and the async
/// resource machinery costs about 50 kB of wasm.)
pub(crate) fn load<T: Send + Sync + 'static>(
    call: impl Future<Output = T> + 'static,
) -> ReadSignal<Option<T>> {
    let (answer, set_answer) = signal(None);
    leptos::task::spawn_local(async move { set_answer.set(Some(call.await)) });
    answer
}

/// `GET /api/health`.
pub(crate) async fn health() -> Option<Health> {
    let response = Request::get("/api/health").send().await.ok()?;
    response.json().await.ok()
}

/// `GET /api/forms/{id}`: the compiled form, or `None` if there is no such form
/// (or no answer).
pub(crate) async fn form(id: &str) -> Option<CompiledForm> {
    let response = Request::get(&format!("/api/forms/{id}"))
        .send()
        .await
        .ok()?;
    if response.status() != 200 {
        return None;
    }
    response.json().await.ok()
}

/// `POST /fhir/QuestionnaireResponse/$validate`: the server's check of the answers.
pub(crate) async fn validate_response(
    response: &QuestionnaireResponse,
) -> Answer<OperationOutcome> {
    match Request::post("/fhir/QuestionnaireResponse/$validate")
        .header("content-type", "application/fhir+json")
        .body(serde_json::to_string(response).unwrap_or_default())
    {
        Ok(request) => answer(request).await,
        Err(_) => Answer::Unreachable,
    }
}
