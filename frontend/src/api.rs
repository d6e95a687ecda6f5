//! Every HTTP call the app makes. Nothing else in the app talks to the network.

use leptos::prelude::{ReadSignal, RwSignal, Set as _, signal};
use shared::draft::Draft;
use shared::form::CompiledForm;
use shared::health::Health;
use shared::json::{self, FromJson};
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

/// A reply: its status and body text.
struct Reply {
    status: u16,
    body: String,
}

/// Sends a request with the browser's `fetch` (no HTTP crate in the bundle: the
/// app only ever sends JSON and reads text; `shared::json` writes and reads it,
/// not serde_json, whose generic code was a large part of the bundle). `None` if
/// nothing usable came back.
/// `key`, if given, goes in the `Idempotency-Key` header.
async fn send(
    method: &str,
    path: &str,
    body: Option<(&str, &str)>,
    key: Option<&str>,
) -> Option<Reply> {
    use wasm_bindgen::JsCast as _;
    use wasm_bindgen_futures::JsFuture;
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    if let Some((content_type, body)) = body {
        let headers = web_sys::Headers::new().ok()?;
        headers.set("content-type", content_type).ok()?;
        if let Some(key) = key {
            headers.set("idempotency-key", key).ok()?;
        }
        init.set_headers(&headers);
        init.set_body(&wasm_bindgen::JsValue::from_str(body));
    }
    let request = web_sys::Request::new_with_str_and_init(path, &init).ok()?;
    let response: web_sys::Response =
        JsFuture::from(leptos::prelude::window().fetch_with_request(&request))
            .await
            .ok()?
            .dyn_into()
            .ok()?;
    let body = JsFuture::from(response.text().ok()?)
        .await
        .ok()?
        .as_string()?;
    Some(Reply {
        status: response.status(),
        body,
    })
}

/// A reply read: 200 is the answer, a 4xx the server's `OperationOutcome`,
/// anything else (or nothing) unreachable.
fn answer<T: FromJson>(reply: Option<Reply>) -> Answer<T> {
    let Some(reply) = reply else {
        return Answer::Unreachable;
    };
    match reply.status {
        200 => json::from_str(&reply.body).map_or(Answer::Unreachable, Answer::Accepted),
        400..=499 => json::from_str(&reply.body).map_or(Answer::Unreachable, Answer::Refused),
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

/// A request a form sends, perhaps again and again: whether one is on its way,
/// and the latest answer. (Instead of an `Action`, whose async machinery costs
/// more wasm than the whole of this module.)
pub(crate) struct Sending<T: Send + Sync + 'static> {
    /// A request is on its way.
    pub(crate) pending: RwSignal<bool>,
    /// The latest answer, once there is one.
    pub(crate) answer: RwSignal<Option<Answer<T>>>,
}

impl<T: Send + Sync + 'static> Clone for Sending<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for Sending<T> {}

impl<T: Send + Sync + 'static> Sending<T> {
    pub(crate) fn new() -> Self {
        Sending {
            pending: RwSignal::new(false),
            answer: RwSignal::new(None),
        }
    }

    /// Starts `call`; its answer replaces the previous one.
    pub(crate) fn send(self, call: impl Future<Output = Answer<T>> + 'static) {
        self.pending.set(true);
        leptos::task::spawn_local(async move {
            let answer = call.await;
            // The form may be gone by now (a new page): then nobody listens.
            let _ = self.answer.try_set(Some(answer));
            let _ = self.pending.try_set(false);
        });
    }
}

/// `GET /api/health`.
pub(crate) async fn health() -> Option<Health> {
    let reply = send("GET", "/api/health", None, None).await?;
    json::from_str(&reply.body)
}

/// `GET /api/forms/{id}`: the compiled form, or `None` if there is no such form
/// (or no answer).
pub(crate) async fn form(id: &str) -> Option<CompiledForm> {
    let path = format!("/api/forms/{}", js_sys::encode_uri_component(id));
    let reply = send("GET", &path, None, None).await?;
    if reply.status != 200 {
        return None;
    }
    json::from_str(&reply.body)
}

/// `POST /fhir/QuestionnaireResponse/$validate`: the server's check of the answers.
pub(crate) async fn validate_response(
    response: &QuestionnaireResponse,
) -> Answer<OperationOutcome> {
    let body = json::to_string(response);
    answer(
        send(
            "POST",
            "/fhir/QuestionnaireResponse/$validate",
            Some(("application/fhir+json", &body)),
            None,
        )
        .await,
    )
}

/// `POST /api/intakes`: the answers sent to the clinic, under `key` (one per
/// submission attempt, the same on a retry, so a retry is never a second intake).
///
/// Accepted is all the patient learns: whether the clinic found their chart is
/// for staff, so the receipt (`linked`, `created`…) is not read, nor shown.
pub(crate) async fn submit_intake(
    response: &QuestionnaireResponse,
    key: &str,
) -> Answer<OperationOutcome> {
    let body = json::to_string(response);
    let reply = send(
        "POST",
        "/api/intakes",
        Some(("application/fhir+json", &body)),
        Some(key),
    )
    .await;
    match reply {
        Some(Reply {
            status: 200 | 201, ..
        }) => Answer::Accepted(OperationOutcome {
            resource_type: String::new(),
            issue: Vec::new(),
        }),
        reply => answer(reply),
    }
}

/// Where a patient's invitation stands, as the server answered.
#[derive(Debug)]
pub(crate) enum Invitation {
    /// The form, the questionnaire it answers, and what the clinic prefilled.
    Form(Box<(CompiledForm, String, Draft)>),
    /// The birth date comes first.
    Confirm,
    /// The birth date did not match; this many tries are left.
    Wrong(i64),
    /// Too many wrong birth dates.
    Locked,
    /// The link cannot be used (used, expired, cancelled, unknown).
    Invalid,
    /// No usable answer.
    Unreachable,
}

/// A refusal of the invitation's endpoints: 401 with the tries left (its
/// `urn:intake:tries-left` extension) is a wrong birth date, any other 401 an
/// unusable link; 403 asks for the birth date; 423 is locked.
fn invitation_refusal(reply: Option<Reply>) -> Invitation {
    let Some(reply) = reply else {
        return Invitation::Unreachable;
    };
    let tries_left = || {
        let body = json::Json::parse(&reply.body)?;
        let issue = match body.get("issue")? {
            json::Json::Array(issues) => issues.first()?,
            _ => return None,
        };
        let extension = match issue.get("extension")? {
            json::Json::Array(extensions) => extensions.first()?,
            _ => return None,
        };
        i64::from_json(extension.get("valueInteger")?)
    };
    match reply.status {
        401 => tries_left().map_or(Invitation::Invalid, Invitation::Wrong),
        403 => Invitation::Confirm,
        423 => Invitation::Locked,
        400..=499 => Invitation::Invalid,
        _ => Invitation::Unreachable,
    }
}

/// A step of a patient's invitation.
#[derive(Debug)]
pub(crate) enum InvitationStep {
    /// `POST /api/invitation/open` with the link's token: the server sets the
    /// invitation's cookie (the page never sees it).
    Open(String),
    /// `POST /api/invitation/confirm` with the birth date (`YYYY-MM-DD`), then
    /// the form if it matched.
    Confirm(String),
    /// `GET /api/invitation/form`: the form and its prefilled answers.
    Load,
}

/// Takes `step` (one function for the three, so the bundle has one copy of the
/// request's state machine).
pub(crate) async fn invitation(step: InvitationStep) -> Invitation {
    let (path, name, value) = match &step {
        InvitationStep::Open(token) => ("/api/invitation/open", "token", token.as_str()),
        InvitationStep::Confirm(date) => ("/api/invitation/confirm", "birthDate", date.as_str()),
        InvitationStep::Load => ("/api/invitation/form", "", ""),
    };
    if !name.is_empty() {
        let body = format!("{{{}:{}}}", json::to_string(name), json::to_string(value));
        let reply = send("POST", path, Some(("application/json", &body)), None).await;
        match (&step, reply) {
            (InvitationStep::Open(_), Some(Reply { status: 200, .. })) => {
                return Invitation::Confirm;
            }
            (_, Some(Reply { status: 200, .. })) => {}
            (_, reply) => return invitation_refusal(reply),
        }
    }
    let reply = send("GET", "/api/invitation/form", None, None).await;
    match reply {
        Some(Reply { status: 200, body }) => {
            let read = || {
                let body = json::Json::parse(&body)?;
                Some(Invitation::Form(Box::new((
                    CompiledForm::from_json(body.get("form")?)?,
                    String::from_json(body.get("questionnaire")?)?,
                    Draft::from_json(body.get("draft")?)?,
                ))))
            };
            read().unwrap_or(Invitation::Unreachable)
        }
        reply => invitation_refusal(reply),
    }
}

/// A new idempotency key: 128 random bits from the browser's cryptographic
/// source, as hex. (Anyone holding a key may replay its receipt.)
pub(crate) fn new_key() -> String {
    let mut bytes = [0u8; 16];
    let filled = leptos::prelude::window()
        .crypto()
        .and_then(|c| c.get_random_values_with_u8_array(&mut bytes))
        .is_ok();
    if !filled {
        // Never one key for everybody: without the cryptographic source (no
        // browser we know of), at least no two patients share a key.
        for byte in &mut bytes {
            *byte = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
        .map(char::from)
        .collect()
}
