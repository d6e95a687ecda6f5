//! Who may call what: one table of every `/api` and `/fhir` route, and the
//! middleware that enforces it before any handler runs.
//!
//! Deny by default: a route missing from [`ROUTES`] is refused to everyone (and
//! logged, by its pattern), so a new route is closed until someone decides who may
//! use it. The generic FHIR routes (`/fhir/{type}…`) are decided by resource type
//! too ([`fhir_access`]): demographics (Patient, Task) are front-desk reading,
//! everything else a patient said (QuestionnaireResponse, Provenance, Observation…)
//! is clinical.
//!
//! Handlers still check what only they can (a decision's kind, whose invitation),
//! and take the [`Principal`] this middleware found from the request's extensions
//! through the [`Authenticated`](super::Authenticated) extractor.

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use super::{AuthError, Authenticated, CsrfChecked, Principal, Role};
use crate::audit::{self, Action, Event, Interaction, Kind, Outcome, Reference};
use crate::guard::Caller;
use crate::state::AppState;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the patient's own flow, health, sign-in. The handler may still ask
    /// for something of its own (a kiosk's device cookie, an invitation's).
    Public,
    /// A session or a token with one of these roles.
    Roles(&'static [Role]),
    /// Decided by the FHIR resource type in the path.
    ByType,
}

use Role::{Admin, Clinician, FrontDesk, System};

/// Staff who see the queue and demographics.
pub const STAFF: &[Role] = &[FrontDesk, Clinician, Admin];
/// Staff and system clients who may read demographics.
const DEMOGRAPHICS: &[Role] = &[FrontDesk, Clinician, Admin, System];
/// Who sees what patients answered.
const CLINICAL: &[Role] = &[Clinician, Admin, System];
/// Who decides matches.
pub const DECIDERS: &[Role] = &[Clinician, Admin];
/// Who may reach the decision route: deciders, and the front desk, which may
/// confirm a proposed link there (the handler checks which).
const CONFIRMERS: &[Role] = &[FrontDesk, Clinician, Admin];
/// Who writes to the FHIR store directly, and manages forms.
const WRITERS: &[Role] = &[Admin, System];
/// Who manages users, kiosks, tokens and reads the audit trail.
const ADMINS: &[Role] = &[Admin];

/// Every route: method, pattern (as axum matched it, with its `/api` or `/fhir`
/// prefix), who may call it.
pub const ROUTES: &[(Method, &str, Access)] = &[
    // The patient's own flow, and what anyone may ask.
    (Method::GET, "/api/health", Access::Public),
    (Method::GET, "/api/forms/{id}", Access::Public),
    (Method::POST, "/api/demographics/validate", Access::Public),
    (Method::POST, "/api/intakes", Access::Public),
    (Method::POST, "/api/staff/login", Access::Public),
    // These two answer 401 themselves without a session.
    (Method::POST, "/api/staff/logout", Access::Public),
    (Method::GET, "/api/staff/me", Access::Public),
    (Method::GET, "/fhir/metadata", Access::Public),
    // A kiosk is a device, never a principal: it enrols with its one-time code
    // and then shows its device cookie, which these handlers (and
    // `POST /api/intakes`) check themselves.
    (Method::POST, "/api/kiosk/enroll", Access::Public),
    (Method::GET, "/api/kiosk/me", Access::Public),
    // A patient's invitation: the token in the body, then its cookie, which the
    // handlers check themselves (birth date first).
    (Method::POST, "/api/invitation/open", Access::Public),
    (Method::POST, "/api/invitation/confirm", Access::Public),
    (Method::GET, "/api/invitation/form", Access::Public),
    // Checking answers stores and returns nothing but what was sent.
    (
        Method::POST,
        "/fhir/QuestionnaireResponse/$validate",
        Access::Public,
    ),
    (Method::POST, "/fhir/{type}/$validate", Access::Public),
    (
        Method::POST,
        "/fhir/Questionnaire/$validate",
        Access::Public,
    ),
    // Staff and systems.
    // Prefilling a form reads the patient's demographics.
    (
        Method::POST,
        "/fhir/Questionnaire/$populate",
        Access::Roles(DEMOGRAPHICS),
    ),
    (
        Method::POST,
        "/fhir/Questionnaire/{id}/$populate",
        Access::Roles(DEMOGRAPHICS),
    ),
    (
        Method::GET,
        "/api/intakes/{id}",
        Access::Roles(DEMOGRAPHICS),
    ),
    // Invitations: the front desk sends them, choosing among the forms.
    (Method::GET, "/api/staff/forms", Access::Roles(STAFF)),
    (Method::GET, "/api/staff/invitations", Access::Roles(STAFF)),
    (Method::POST, "/api/staff/invitations", Access::Roles(STAFF)),
    (
        Method::DELETE,
        "/api/staff/invitations/{id}",
        Access::Roles(STAFF),
    ),
    // The match-resolution screen: staff read (answers only for clinicians, the
    // handler decides), clinicians and admins decide.
    (Method::GET, "/api/staff/review", Access::Roles(STAFF)),
    (
        Method::GET,
        "/api/staff/review/{task}",
        Access::Roles(STAFF),
    ),
    (
        Method::POST,
        "/api/staff/review/{task}/decision",
        Access::Roles(CONFIRMERS),
    ),
    (
        Method::POST,
        "/fhir/Patient/$match",
        Access::Roles(DEMOGRAPHICS),
    ),
    (
        Method::GET,
        "/fhir/Questionnaire",
        Access::Roles(DEMOGRAPHICS),
    ),
    (
        Method::GET,
        "/fhir/Questionnaire/{id}",
        Access::Roles(DEMOGRAPHICS),
    ),
    (
        Method::POST,
        "/fhir/QuestionnaireResponse/$extract",
        Access::Roles(CLINICAL),
    ),
    (
        Method::POST,
        "/fhir/QuestionnaireResponse/{id}/$validate",
        Access::Roles(CLINICAL),
    ),
    (
        Method::POST,
        "/fhir/QuestionnaireResponse/{id}/$extract",
        Access::Roles(CLINICAL),
    ),
    (
        Method::PUT,
        "/fhir/Questionnaire/{id}",
        Access::Roles(WRITERS),
    ),
    (Method::POST, "/fhir/Questionnaire", Access::Roles(WRITERS)),
    (Method::POST, "/fhir", Access::Roles(WRITERS)),
    (Method::GET, "/fhir/AuditEvent", Access::Roles(ADMINS)),
    (Method::GET, "/api/admin/kiosks", Access::Roles(ADMINS)),
    (Method::POST, "/api/admin/kiosks", Access::Roles(ADMINS)),
    (
        Method::DELETE,
        "/api/admin/kiosks/{id}",
        Access::Roles(ADMINS),
    ),
    // Staff accounts and system tokens (the administrators' screen).
    (Method::GET, "/api/admin/users", Access::Roles(ADMINS)),
    (Method::POST, "/api/admin/users", Access::Roles(ADMINS)),
    (
        Method::POST,
        "/api/admin/users/{username}/disable",
        Access::Roles(ADMINS),
    ),
    (
        Method::POST,
        "/api/admin/users/{username}/enable",
        Access::Roles(ADMINS),
    ),
    (
        Method::POST,
        "/api/admin/users/{username}/password",
        Access::Roles(ADMINS),
    ),
    (Method::GET, "/api/admin/tokens", Access::Roles(ADMINS)),
    (Method::POST, "/api/admin/tokens", Access::Roles(ADMINS)),
    (
        Method::DELETE,
        "/api/admin/tokens/{name}",
        Access::Roles(ADMINS),
    ),
    // The store, by resource type.
    (Method::GET, "/fhir/{type}", Access::ByType),
    (Method::POST, "/fhir/{type}", Access::ByType),
    // A search with its parameters in the body: a read.
    (Method::POST, "/fhir/{type}/_search", Access::ByType),
    (Method::GET, "/fhir/{type}/{id}", Access::ByType),
    (Method::PUT, "/fhir/{type}/{id}", Access::ByType),
    (Method::GET, "/fhir/{type}/{id}/_history", Access::ByType),
    (
        Method::GET,
        "/fhir/{type}/{id}/_history/{version}",
        Access::ByType,
    ),
];

/// Who may call a route, or `None` for a route missing from [`ROUTES`].
pub fn access(method: &Method, route: &str) -> Option<Access> {
    // HEAD is a GET without the body.
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    ROUTES
        .iter()
        .find(|(m, r, _)| m == method && *r == route)
        .map(|(_, _, access)| *access)
}

/// Who may use the generic store routes for `resource_type`.
pub fn fhir_access(method: &Method, resource_type: &str) -> &'static [Role] {
    let read = matches!(*method, Method::GET | Method::HEAD);
    match resource_type {
        // The audit trail only through its own search, for admins.
        "AuditEvent" => ADMINS,
        _ if !read => WRITERS,
        // An emergency contact is demographics: the front desk calls them.
        "Patient" | "Task" | "RelatedPerson" => DEMOGRAPHICS,
        _ => CLINICAL,
    }
}

/// Whether `role` may call `route` with `method` (for `/fhir/{type}…`, on
/// `resource_type`). A route missing from the table is refused.
pub fn allowed(role: Role, method: &Method, route: &str, resource_type: Option<&str>) -> bool {
    match access(method, route) {
        None => false,
        Some(Access::Public) => true,
        Some(Access::Roles(roles)) => roles.contains(&role),
        Some(Access::ByType) => {
            let method = if route.ends_with("/_search") {
                &Method::GET
            } else {
                method
            };
            resource_type.is_some_and(|t| fhir_access(method, t).contains(&role))
        }
    }
}

/// The middleware: finds the principal (a bearer token, or a session and, for a
/// state-changing request, its CSRF token and Origin), checks the table, and
/// hands the principal on in the request's extensions. Refusals are audited.
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let method = request.method().clone();
    let Some(access) = access(&method, &route) else {
        // A FHIR route asked with a method it does not have (DELETE, PATCH, a
        // conditional update…): the interaction is not supported, for anyone,
        // as the public CapabilityStatement says.
        let allow = methods_of(&route);
        if route.starts_with("/fhir") && !allow.is_empty() {
            return not_supported(&route, request.uri().path(), &allow);
        }
        // A route nobody has placed yet.
        tracing::warn!(http.route = %route, %method, "not in the access policy: refused");
        let credentials = request
            .headers()
            .contains_key(axum::http::header::AUTHORIZATION)
            || request.headers().contains_key(axum::http::header::COOKIE);
        return if credentials {
            AuthError::Forbidden
        } else {
            AuthError::Unauthenticated
        }
        .into_response();
    };
    if access == Access::Public {
        // A system client on a public route (a script submitting intakes) is
        // still known, and may be told more (`POST /api/intakes`'s receipt); a
        // wrong token is refused, not ignored.
        let (mut parts, body) = request.into_parts();
        if !parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            // Staff entering an intake at the desk are its proof of identity.
            if method == Method::POST
                && route == "/api/intakes"
                && let Some(principal) = super::session::quiet_staff(&mut parts, &state).await
            {
                if let Err(wait) = limit(
                    &state,
                    Caller::Principal(format!("{:?}", principal.kind)),
                    false,
                ) {
                    return crate::guard::too_many_requests(wait);
                }
                parts.extensions.insert(principal);
                return next.run(Request::from_parts(parts, body)).await;
            }
            if is_rate_limited(&method, &route)
                && let Some(address) = super::ClientAddr::from_parts(&parts).0
                && let Err(wait) = limit(&state, Caller::Address(address), true)
            {
                tracing::warn!(http.route = %route, "rate limit: a caller without credentials refused");
                return crate::guard::too_many_requests(wait);
            }
            // `/fhir` takes 4 MiB for Questionnaires; a stranger's `$validate`
            // gets the small limit `/api` has (413 past it).
            let body = if route.starts_with("/fhir/") {
                axum::body::Body::new(http_body_util::Limited::new(body, state.public_body_bytes))
            } else {
                body
            };
            return next.run(Request::from_parts(parts, body)).await;
        }
        return match Authenticated::from_request_parts(&mut parts, &state).await {
            Ok(Authenticated(principal)) => {
                if let Err(wait) = limit(
                    &state,
                    Caller::Principal(format!("{:?}", principal.kind)),
                    false,
                ) {
                    return crate::guard::too_many_requests(wait);
                }
                parts.extensions.insert(principal);
                next.run(Request::from_parts(parts, body)).await
            }
            Err(error) => error.into_response(),
        };
    }
    let resource_type = route
        .starts_with("/fhir/{type}")
        // Inside the nested router the path has lost its `/fhir` prefix.
        .then(|| {
            let path = request.uri().path();
            path.strip_prefix("/fhir")
                .unwrap_or(path)
                .trim_start_matches('/')
        })
        .and_then(|rest| rest.split('/').next())
        .map(str::to_owned);
    let target = target_of(&route, request.uri().path());
    let (mut parts, body) = request.into_parts();
    let address = super::ClientAddr::from_request_parts(&mut parts, &state)
        .await
        .map(|a| a.0)
        .unwrap_or(None);
    let bearer = parts
        .headers
        .contains_key(axum::http::header::AUTHORIZATION);
    let unsafe_method = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    // A session's state-changing request must also pass the CSRF checks; a bearer
    // request needs none (no browser attaches the header by itself).
    let principal: Result<Principal, AuthError> = if unsafe_method && !bearer {
        CsrfChecked::from_request_parts(&mut parts, &state)
            .await
            .map(|c| c.0.principal)
    } else {
        Authenticated::from_request_parts(&mut parts, &state)
            .await
            .map(|a| a.0)
    };
    let principal = match principal {
        Ok(principal) => principal,
        Err(error) => return error.into_response(),
    };
    if !allowed(principal.role, &method, &route, resource_type.as_deref()) {
        let (interaction, action) = interaction_of(&method, &route);
        let event = Event::new(Kind::Rest(interaction), action, Outcome::MinorFailure)
            .by(Some(principal.agent()))
            .from(address)
            .about("urn:intake:route", &format!("{method} {route}"))
            .on_all(target);
        if let Err(error) = audit::record_alone(&state.db, state.clock.now(), &event).await {
            tracing::error!(%error, "recording a refused access");
        }
        return AuthError::Forbidden.into_response();
    }
    if let Err(wait) = limit(
        &state,
        Caller::Principal(format!("{:?}", principal.kind)),
        false,
    ) {
        return crate::guard::too_many_requests(wait);
    }
    parts.extensions.insert(principal);
    next.run(Request::from_parts(parts, body)).await
}

/// The methods the table has for `route` (HEAD with GET).
pub fn methods_of(route: &str) -> Vec<Method> {
    let mut methods: Vec<Method> = ROUTES
        .iter()
        .filter(|(_, r, _)| *r == route)
        .map(|(m, _, _)| m.clone())
        .collect();
    if methods.contains(&Method::GET) {
        methods.push(Method::HEAD);
    }
    methods
}

/// 405 with `Allow` (or 501 for an operation, `$name`, this server does not
/// have), an `OperationOutcome` `not-supported`: what a FHIR client reads as "this
/// server does not do that", never as "you may not".
fn not_supported(route: &str, path: &str, allow: &[Method]) -> Response {
    use crate::fhir::outcome::{Issue, IssueType};
    let operation = path.rsplit('/').next().is_some_and(|s| s.starts_with('$'));
    if operation {
        return crate::http::outcome_response(
            axum::http::StatusCode::NOT_IMPLEMENTED,
            &[Issue::error(
                IssueType::NotSupported,
                "This server does not support that operation: GET /fhir/metadata lists the ones it has",
            )],
        );
    }
    let message = match route {
        "/fhir/{type}/{id}" => {
            "Not supported: resources here are read, updated with PUT, never deleted or patched (see GET /fhir/metadata)"
        }
        "/fhir/{type}" => {
            "Not supported: search with GET, create with POST; conditional update and delete are not supported"
        }
        "/fhir" => {
            "Send a transaction or batch Bundle with POST; GET /fhir/metadata says what this server does"
        }
        _ => {
            "This interaction is not supported here: GET /fhir/metadata says what this server does"
        }
    };
    let mut response = crate::http::outcome_response(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        &[Issue::error(IssueType::NotSupported, message)],
    );
    let allow = allow
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(value) = axum::http::HeaderValue::from_str(&allow) {
        response
            .headers_mut()
            .insert(axum::http::header::ALLOW, value);
    }
    response
}

/// The public routes a stranger could use to flood the clinic (charts,
/// invitations' guesses, kiosk codes, costly checks): rate-limited per address
/// for callers without credentials. Reads (health, a form, `me`) are not.
fn is_rate_limited(method: &Method, route: &str) -> bool {
    *method == Method::POST
        && matches!(
            route,
            "/api/intakes"
                | "/fhir/QuestionnaireResponse/$validate"
                | "/api/demographics/validate"
                | "/api/kiosk/enroll"
                | "/api/invitation/open"
                | "/api/invitation/confirm"
        )
}

/// One request from `caller`: the public (per address) or the credentialed
/// (per principal) limit. `Err` is the seconds to wait.
fn limit(state: &AppState, caller: Caller, public: bool) -> Result<(), u64> {
    let per_minute = if public {
        state.guard.public_per_minute
    } else {
        state.guard.client_per_minute
    };
    state
        .limiter
        .check(caller, per_minute, std::time::Instant::now())
}

/// What a request's path names, for the record of its refusal: `{type}/{id}` on
/// the store's routes, `Task/{task}` on the review's. `path` is what the nested
/// router saw (without the `/api` or `/fhir` the pattern starts with).
fn target_of(route: &str, path: &str) -> Option<Reference> {
    let pattern: Vec<&str> = route.trim_start_matches('/').split('/').skip(1).collect();
    let path: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if pattern.len() != path.len() {
        return None;
    }
    let value = |name: &str| {
        let i = pattern.iter().position(|p| *p == name)?;
        path.get(i).copied()
    };
    let named = match (value("{type}"), value("{id}"), value("{task}")) {
        (Some(kind), Some(id), _) => format!("{kind}/{id}"),
        (_, _, Some(task)) => format!("Task/{task}"),
        _ => return None,
    };
    Reference::parse(&named)
}

/// The audit interaction and action of a request: a GET on a type (`/fhir/{type}`,
/// `/fhir/AuditEvent`) is a search, on anything else a read.
pub fn interaction_of(method: &Method, route: &str) -> (Interaction, Action) {
    let last = route.rsplit('/').next().unwrap_or_default();
    let on_a_type = last == "{type}" || last.starts_with(|c: char| c.is_ascii_uppercase());
    match *method {
        Method::GET | Method::HEAD if on_a_type => (Interaction::Search, Action::R),
        Method::GET | Method::HEAD => (Interaction::Read, Action::R),
        Method::PUT | Method::PATCH => (Interaction::Update, Action::U),
        Method::DELETE => (Interaction::Delete, Action::D),
        _ => (Interaction::Create, Action::C),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOBODY: Option<Role> = None;

    /// Every role, and no principal at all.
    fn callers() -> [Option<Role>; 5] {
        [
            NOBODY,
            Some(FrontDesk),
            Some(Clinician),
            Some(Admin),
            Some(System),
        ]
    }

    /// The whole table, as the issue states it: each row names who may call
    /// (`-` nobody signed in, `f` front-desk, `c` clinician, `a` admin, `s`
    /// system). Every other caller must be refused.
    const EXPECTED: &[(&str, &str, Option<&str>, &str)] = &[
        ("GET", "/api/health", None, "-fcas"),
        ("GET", "/api/forms/{id}", None, "-fcas"),
        ("POST", "/api/demographics/validate", None, "-fcas"),
        ("POST", "/api/intakes", None, "-fcas"),
        ("POST", "/api/staff/login", None, "-fcas"),
        ("POST", "/api/staff/logout", None, "-fcas"),
        ("GET", "/api/staff/me", None, "-fcas"),
        ("GET", "/fhir/metadata", None, "-fcas"),
        ("POST", "/api/kiosk/enroll", None, "-fcas"),
        ("GET", "/api/kiosk/me", None, "-fcas"),
        ("POST", "/api/invitation/open", None, "-fcas"),
        ("POST", "/api/invitation/confirm", None, "-fcas"),
        ("GET", "/api/invitation/form", None, "-fcas"),
        ("GET", "/api/staff/forms", None, "fca"),
        ("GET", "/api/staff/invitations", None, "fca"),
        ("POST", "/api/staff/invitations", None, "fca"),
        ("DELETE", "/api/staff/invitations/{id}", None, "fca"),
        ("GET", "/api/admin/kiosks", None, "a"),
        ("POST", "/api/admin/kiosks", None, "a"),
        ("DELETE", "/api/admin/kiosks/{id}", None, "a"),
        ("GET", "/api/admin/users", None, "a"),
        ("POST", "/api/admin/users", None, "a"),
        ("POST", "/api/admin/users/{username}/disable", None, "a"),
        ("POST", "/api/admin/users/{username}/enable", None, "a"),
        ("POST", "/api/admin/users/{username}/password", None, "a"),
        ("GET", "/api/admin/tokens", None, "a"),
        ("POST", "/api/admin/tokens", None, "a"),
        ("DELETE", "/api/admin/tokens/{name}", None, "a"),
        ("HEAD", "/fhir/metadata", None, "-fcas"),
        (
            "POST",
            "/fhir/QuestionnaireResponse/$validate",
            None,
            "-fcas",
        ),
        ("GET", "/api/intakes/{id}", None, "fcas"),
        ("GET", "/api/staff/review", None, "fca"),
        ("GET", "/api/staff/review/{task}", None, "fca"),
        ("POST", "/api/staff/review/{task}/decision", None, "fca"),
        ("POST", "/fhir/Patient/$match", None, "fcas"),
        ("GET", "/fhir/Questionnaire", None, "fcas"),
        ("GET", "/fhir/Questionnaire/{id}", None, "fcas"),
        ("POST", "/fhir/QuestionnaireResponse/$extract", None, "cas"),
        ("PUT", "/fhir/Questionnaire/{id}", None, "as"),
        ("POST", "/fhir", None, "as"),
        ("POST", "/fhir/Questionnaire", None, "as"),
        (
            "POST",
            "/fhir/QuestionnaireResponse/{id}/$validate",
            None,
            "cas",
        ),
        (
            "POST",
            "/fhir/QuestionnaireResponse/{id}/$extract",
            None,
            "cas",
        ),
        ("POST", "/fhir/{type}/$validate", None, "-fcas"),
        ("POST", "/fhir/Questionnaire/$validate", None, "-fcas"),
        ("POST", "/fhir/Questionnaire/$populate", None, "fcas"),
        ("POST", "/fhir/Questionnaire/{id}/$populate", None, "fcas"),
        ("POST", "/fhir/{type}/_search", Some("Patient"), "fcas"),
        ("POST", "/fhir/{type}/_search", Some("Observation"), "cas"),
        ("GET", "/fhir/AuditEvent", None, "a"),
        ("GET", "/fhir/{type}", Some("Patient"), "fcas"),
        ("GET", "/fhir/{type}/{id}", Some("Patient"), "fcas"),
        ("HEAD", "/fhir/{type}/{id}", Some("Patient"), "fcas"),
        ("GET", "/fhir/{type}/{id}/_history", Some("Patient"), "fcas"),
        (
            "GET",
            "/fhir/{type}/{id}/_history/{version}",
            Some("Task"),
            "fcas",
        ),
        ("GET", "/fhir/{type}", Some("Task"), "fcas"),
        ("GET", "/fhir/{type}", Some("RelatedPerson"), "fcas"),
        ("POST", "/fhir/{type}", Some("RelatedPerson"), "as"),
        ("GET", "/fhir/{type}", Some("Observation"), "cas"),
        ("GET", "/fhir/{type}", Some("QuestionnaireResponse"), "cas"),
        ("GET", "/fhir/{type}/{id}", Some("Provenance"), "cas"),
        (
            "GET",
            "/fhir/{type}/{id}/_history/{version}",
            Some("Observation"),
            "cas",
        ),
        ("GET", "/fhir/{type}/{id}", Some("AuditEvent"), "a"),
        ("POST", "/fhir/{type}", Some("Patient"), "as"),
        ("PUT", "/fhir/{type}/{id}", Some("Patient"), "as"),
        ("POST", "/fhir/{type}", Some("QuestionnaireResponse"), "as"),
        ("PUT", "/fhir/{type}/{id}", Some("Task"), "as"),
        ("POST", "/fhir/{type}", Some("AuditEvent"), "a"),
        // Not in the table: nobody.
        ("DELETE", "/fhir/{type}/{id}", Some("Patient"), ""),
        ("GET", "/api/not-a-route", None, ""),
    ];

    fn letter(role: Option<Role>) -> char {
        match role {
            None => '-',
            Some(FrontDesk) => 'f',
            Some(Clinician) => 'c',
            Some(Admin) => 'a',
            Some(System) => 's',
        }
    }

    #[test]
    fn each_caller_reaches_exactly_what_the_table_says() {
        for (method, route, resource_type, who) in EXPECTED {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            for caller in callers() {
                let expected = who.contains(letter(caller));
                let got = match caller {
                    None => access(&method, route) == Some(Access::Public),
                    Some(role) => allowed(role, &method, route, *resource_type),
                };
                assert_eq!(
                    got,
                    expected,
                    "{method} {route} {resource_type:?} for {:?}",
                    caller.map(Role::code)
                );
            }
        }
    }

    #[test]
    fn every_route_in_the_table_is_in_the_expectations() {
        for (method, route, _) in ROUTES {
            assert!(
                EXPECTED
                    .iter()
                    .any(|(m, r, _, _)| *m == method.as_str() && r == route),
                "{method} {route} has no expected row"
            );
        }
    }

    #[test]
    fn a_refusal_names_what_the_path_named() {
        let named = |route, path| target_of(route, path).map(|r| r.as_str().to_owned());
        assert_eq!(
            named("/fhir/{type}/{id}", "/Patient/p1").as_deref(),
            Some("Patient/p1")
        );
        assert_eq!(
            named(
                "/fhir/{type}/{id}/_history/{version}",
                "/Task/t1/_history/2"
            )
            .as_deref(),
            Some("Task/t1")
        );
        assert_eq!(
            named(
                "/api/staff/review/{task}/decision",
                "/staff/review/t9/decision"
            )
            .as_deref(),
            Some("Task/t9")
        );
        assert_eq!(named("/fhir/{type}", "/Patient"), None);
        assert_eq!(named("/fhir/{type}/{id}", "/Patient/a b"), None);
    }

    #[test]
    fn a_store_route_without_its_type_is_refused() {
        assert!(!allowed(Admin, &Method::GET, "/fhir/{type}", None));
    }
}
