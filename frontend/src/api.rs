//! Every HTTP call the app makes. Nothing else in the app talks to the network.

use leptos::prelude::{ReadSignal, RwSignal, Set as _, signal};
use shared::draft::Draft;
use shared::form::CompiledForm;
use shared::health::Health;
use shared::json::{self, FromJson};
use shared::kiosk::KioskMe;
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
    let headers: &[(&str, &str)] = match &key {
        Some(key) => &[("idempotency-key", key)],
        None => &[],
    };
    send_with(method, path, body, headers)
        .await
        .map(|(reply, _)| reply)
}

/// `send` with any headers; also returns the response (for its headers).
async fn send_with(
    method: &str,
    path: &str,
    body: Option<(&str, &str)>,
    extra: &[(&str, &str)],
) -> Option<(Reply, web_sys::Response)> {
    use wasm_bindgen::JsCast as _;
    use wasm_bindgen_futures::JsFuture;
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    if body.is_some() || !extra.is_empty() {
        let headers = web_sys::Headers::new().ok()?;
        for (name, value) in extra {
            headers.set(name, value).ok()?;
        }
        if let Some((content_type, body)) = body {
            headers.set("content-type", content_type).ok()?;
            init.set_body(&wasm_bindgen::JsValue::from_str(body));
        }
        init.set_headers(&headers);
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
    Some((
        Reply {
            status: response.status(),
            body,
        },
        response,
    ))
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

/// This device's kiosk: `GET /api/kiosk/me`, or with `code` (typed by staff)
/// `POST /api/kiosk/enroll`, which makes this browser that kiosk (the server sets
/// the device cookie). Refused (without the reasons: the page only needs to know)
/// if the device is not a kiosk or the code does not work.
pub(crate) async fn kiosk(code: Option<String>) -> Answer<KioskMe> {
    // A code is letters, digits, dashes and spaces: nothing to escape once the
    // rest is dropped.
    let body = code.map(|code| {
        let mut body = String::from("{\"code\":\"");
        body.extend(
            code.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == ' '),
        );
        body.push_str("\"}");
        body
    });
    // One request, so one copy of `send` in this future.
    let (method, path) = match body {
        Some(_) => ("POST", "/api/kiosk/enroll"),
        None => ("GET", "/api/kiosk/me"),
    };
    let reply = send(
        method,
        path,
        body.as_deref().map(|body| ("application/json", body)),
        None,
    )
    .await;
    match reply {
        Some(Reply { status: 200, body }) => {
            json::from_str(&body).map_or(Answer::Unreachable, Answer::Accepted)
        }
        Some(Reply {
            status: 400..=499, ..
        }) => Answer::Refused(OperationOutcome {
            resource_type: String::new(),
            issue: Vec::new(),
        }),
        _ => Answer::Unreachable,
    }
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
    /// The form, the questionnaire it answers, what the clinic prefilled, and
    /// whether that came from the chart (else from what the front desk typed).
    Form(Box<(CompiledForm, String, Draft, bool)>),
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
                    body.get("prefilledFrom").and_then(json::Json::as_str) != Some("front-desk"),
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

// The staff app's calls. The session is the `__Host-` cookie the browser keeps
// (HttpOnly: this code never sees it); the CSRF token that login and `me` return
// is kept here and sent with every state-changing request.

thread_local! {
    static CSRF: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Keeps (or, with `None`, forgets) the session's CSRF token.
pub(crate) fn set_csrf(token: Option<String>) {
    CSRF.with(|csrf| *csrf.borrow_mut() = token);
}

/// A staff call's answer: the status, the JSON body if it had one, and
/// `Retry-After` in seconds if it said.
#[derive(Clone, Debug)]
pub(crate) struct StaffReply {
    pub(crate) status: u16,
    pub(crate) body: Option<shared::json::Json>,
    pub(crate) retry_after: Option<u32>,
}

impl StaffReply {
    /// The first diagnostics line of an `OperationOutcome` body.
    pub(crate) fn diagnostics(&self) -> Option<String> {
        let outcome = OperationOutcome::from_json(self.body.as_ref()?)?;
        outcome
            .issue
            .into_iter()
            .find_map(|issue| issue.diagnostics)
    }
}

/// A staff request: `body` is JSON; `if_match` goes in `If-Match`. Every method
/// but `GET` carries the CSRF token. `None` if the server could not be reached.
pub(crate) async fn staff(
    method: &str,
    path: &str,
    body: Option<&str>,
    if_match: Option<&str>,
) -> Option<StaffReply> {
    let csrf = CSRF.with(|csrf| csrf.borrow().clone());
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if method != "GET"
        && let Some(csrf) = &csrf
    {
        headers.push(("x-csrf-token", csrf));
    }
    if let Some(version) = if_match {
        headers.push(("if-match", version));
    }
    let (reply, response) = send_with(
        method,
        path,
        body.map(|b| ("application/json", b)),
        &headers,
    )
    .await?;
    let retry_after = response
        .headers()
        .get("retry-after")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse().ok());
    Some(StaffReply {
        status: reply.status,
        body: shared::json::Json::parse(&reply.body),
        retry_after,
    })
}

/// `encodeURIComponent`, for an id in a path.
pub(crate) fn path_segment(id: &str) -> String {
    js_sys::encode_uri_component(id).into()
}
