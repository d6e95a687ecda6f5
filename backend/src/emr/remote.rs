//! The remote EMR: any FHIR R4 server, by base URL, over HTTP(S) with reqwest.
//!
//! Requests carry no bearer token, a static one, or a SMART backend-services one
//! ([`super::auth`]). Each has a timeout; a few quick retries (429, 5xx, refused
//! connections) honour `Retry-After` up to [`MAX_WAIT`]; past that the error is
//! [`EmrError::Unavailable`] with the EMR's `retry_after_ms`, and the outbox
//! (`intake/outbox.rs`) does the long-term retrying. A timeout is never retried
//! here: a hung EMR costs one timeout, not several.
//!
//! Searches are `POST [type]/_search` with a form body, so patient data stays out
//! of URLs (and the EMR's access logs); a server that refuses that (405) is asked
//! with `GET` from then on. Matching asks several blocking searches, unions the
//! Patients they bring, and scores them with our engine in an index of those
//! candidates, whose prior is the EMR's patient count (`Patient?_summary=count`,
//! cached for ten minutes, or `INTAKE_EMR_PATIENTS`).
//!
//! Nothing the EMR answers goes into an error's `reason` or a log line: only
//! statuses, error kinds and, from a refusal's `OperationOutcome`, issue codes and
//! element paths.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt as _;
use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::auth::{self, Auth, SigningKey, Smart};
use super::{Emr, EmrError, Found};
pub use crate::config::RemoteArgs;
use crate::fhir::FHIR_JSON;
use crate::fhir::outcome::{Issue, IssueType, Severity};

/// A request's time limit unless `INTAKE_EMR_TIMEOUT_MS` says otherwise.
const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// The SMART scopes asked for unless `INTAKE_EMR_SCOPE` says otherwise: what the
/// trait's methods do (conditional creates search, hence `s`).
pub const DEFAULT_SCOPE: &str = "system/Patient.crus system/QuestionnaireResponse.cs \
                                 system/Provenance.cs system/Questionnaire.rs";
/// Attempts per request (the first included).
const ATTEMPTS: u32 = 3;
/// The longest wait between attempts here; a longer `Retry-After` is the
/// outbox's to honour.
pub const MAX_WAIT: Duration = Duration::from_secs(2);
/// Most Patients one blocking search brings.
const SEARCH_COUNT: usize = 50;
/// Blocking searches in flight at once.
const CONCURRENT_SEARCHES: usize = 4;
/// How long the EMR's patient count is trusted.
const POPULATION_TTL: Duration = Duration::from_secs(600);
/// The population assumed when the EMR does not say how many patients it has: a
/// large one asks for more evidence before a link is certain.
const FALLBACK_POPULATION: usize = 100_000;

/// A remote FHIR R4 server as the [`Emr`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Remote {
    inner: Arc<Inner>,
}

struct Inner {
    /// The FHIR base, without a trailing `/`.
    base: String,
    http: reqwest::Client,
    auth: Auth,
    timeout: Duration,
    matching: matching::Config,
    /// `INTAKE_EMR_PATIENTS`.
    patients: Option<usize>,
    /// The EMR's last patient count, and when it was asked.
    population: Mutex<Option<(usize, Instant)>>,
    /// New patients accepted but not yet delivered, by the pipeline's key.
    pending: RwLock<HashMap<String, matching::PatientRecord>>,
    /// The EMR refused `POST _search`: search with `GET`.
    get_search: AtomicBool,
}

impl std::fmt::Debug for Inner {
    // The pending records are patient data: counted, never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("base", &self.base)
            .field("auth", &self.auth)
            .field("timeout", &self.timeout)
            .field("patients", &self.patients)
            .field(
                "pending",
                &self
                    .pending
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .len(),
            )
            .finish_non_exhaustive()
    }
}

/// Whether a request may be sent again after an answer that does not say it
/// was not acted on (a 500, a broken connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Replay {
    /// Reads, searches, updates, conditional creates: twice is once.
    Safe,
    /// A plain create: retried only when the EMR certainly did not act (429,
    /// 503, no connection).
    Unsafe,
}

#[derive(Debug)]
enum Body {
    Empty,
    Json(Vec<u8>),
    Form(String),
}

/// One request to the EMR.
#[derive(Debug)]
struct Call {
    /// What it is, for error reasons (`search`, `transaction`).
    what: &'static str,
    method: Method,
    /// Relative to the base (`Patient/123`); empty for the base itself.
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Body,
    replay: Replay,
}

impl Call {
    fn new(what: &'static str, method: Method, path: impl Into<String>) -> Self {
        Self {
            what,
            method,
            path: path.into(),
            headers: Vec::new(),
            body: Body::Empty,
            replay: Replay::Safe,
        }
    }

    fn header(mut self, name: HeaderName, value: &str) -> Result<Self, EmrError> {
        let value = HeaderValue::from_str(value).map_err(|_| {
            rejected_here(IssueType::Value, "A header value the EMR cannot be sent")
        })?;
        self.headers.push((name, value));
        Ok(self)
    }

    fn json(mut self, resource: &Value) -> Self {
        self.body = Body::Json(resource.to_string().into_bytes());
        self
    }
}

/// The EMR's answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// One page of a search: the resources found, and whether there were more.
#[derive(Debug, Default)]
struct Page {
    resources: Vec<Value>,
    more: bool,
}

impl Remote {
    /// The remote EMR `args` describe, with the matching engine's `matching`
    /// settings (thresholds and all, as for the embedded store); `None` without
    /// `INTAKE_EMR_URL` (the embedded store is the EMR). Reads the private key now,
    /// so a bad one stops the start; asks the EMR nothing until first used.
    pub fn from_args(
        args: &RemoteArgs,
        matching: matching::Config,
    ) -> anyhow::Result<Option<Self>> {
        let Some(url) = args
            .emr_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        else {
            anyhow::ensure!(
                args.emr_token.is_none()
                    && args.emr_client_id.is_none()
                    && args.emr_private_key.is_none(),
                "INTAKE_EMR_TOKEN, INTAKE_EMR_CLIENT_ID and INTAKE_EMR_PRIVATE_KEY need \
                 INTAKE_EMR_URL"
            );
            return Ok(None);
        };
        let parsed = reqwest::Url::parse(url)
            .with_context(|| "INTAKE_EMR_URL is not a URL (https://host/fhir/R4)")?;
        anyhow::ensure!(
            matches!(parsed.scheme(), "http" | "https")
                && parsed.query().is_none()
                && parsed.fragment().is_none(),
            "INTAKE_EMR_URL must be an http(s) FHIR base URL without a query"
        );
        let base = url.trim_end_matches('/').to_owned();
        let timeout_ms = args.emr_timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        anyhow::ensure!(timeout_ms >= 1, "INTAKE_EMR_TIMEOUT_MS must be at least 1");
        let timeout = Duration::from_millis(timeout_ms);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            // A FHIR server that redirects is misconfigured (or the URL is): a
            // redirected POST would become a GET, and a token go to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("intake/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the EMR's HTTP client")?;
        let auth = match (
            args.emr_token.as_deref(),
            args.emr_client_id.as_deref(),
            args.emr_private_key.as_deref(),
        ) {
            (Some(token), None, None) => {
                anyhow::ensure!(!token.trim().is_empty(), "INTAKE_EMR_TOKEN is empty");
                Auth::Bearer(token.trim().into())
            }
            (None, Some(client_id), Some(key_path)) => {
                let pem = std::fs::read_to_string(key_path).with_context(|| {
                    format!("reading INTAKE_EMR_PRIVATE_KEY ({})", key_path.display())
                })?;
                let key = SigningKey::from_pem(&pem)
                    .with_context(|| format!("INTAKE_EMR_PRIVATE_KEY ({})", key_path.display()))?;
                Auth::Smart(Box::new(Smart::new(
                    client_id.to_owned(),
                    key,
                    args.emr_key_id.clone(),
                    args.emr_scope
                        .clone()
                        .unwrap_or_else(|| DEFAULT_SCOPE.to_owned()),
                    base.clone(),
                    args.emr_token_url.clone(),
                    http.clone(),
                )))
            }
            (None, None, None) => {
                anyhow::ensure!(
                    args.emr_key_id.is_none()
                        && args.emr_token_url.is_none()
                        && args.emr_scope.is_none(),
                    "INTAKE_EMR_KEY_ID, INTAKE_EMR_TOKEN_URL and INTAKE_EMR_SCOPE are for SMART \
                     backend services: set INTAKE_EMR_CLIENT_ID and INTAKE_EMR_PRIVATE_KEY too"
                );
                Auth::None
            }
            (Some(_), _, _) => anyhow::bail!(
                "INTAKE_EMR_TOKEN is a static token: do not set INTAKE_EMR_CLIENT_ID or \
                 INTAKE_EMR_PRIVATE_KEY (SMART backend services) with it"
            ),
            (None, _, _) => anyhow::bail!(
                "SMART backend services need both INTAKE_EMR_CLIENT_ID and INTAKE_EMR_PRIVATE_KEY"
            ),
        };
        let host = parsed.host_str().unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if parsed.scheme() == "http" && !loopback {
            tracing::warn!(
                "INTAKE_EMR_URL is plain http: patient data will cross the network unencrypted"
            );
        }
        let patients = match args.emr_patients {
            Some(n) => {
                anyhow::ensure!(n >= 1, "INTAKE_EMR_PATIENTS must be at least 1");
                Some(usize::try_from(n).unwrap_or(usize::MAX))
            }
            None => None,
        };
        Ok(Some(Self {
            inner: Arc::new(Inner {
                base,
                http,
                auth,
                timeout,
                matching,
                patients,
                population: Mutex::new(None),
                pending: RwLock::new(HashMap::new()),
                get_search: AtomicBool::new(false),
            }),
        }))
    }
}

/// A 400 of our own making: the request could not be sent as asked.
fn rejected_here(code: IssueType, text: &str) -> EmrError {
    EmrError::Rejected {
        status: 400,
        issues: vec![Issue::error(code, text)],
    }
}

fn unavailable(reason: String, retry_after: Option<Duration>) -> EmrError {
    EmrError::Unavailable {
        reason,
        retry_after_ms: retry_after.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    }
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds.min(86_400)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

/// The wait before attempt `attempt + 1` when the EMR did not say: 100 ms, 400 ms.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 4u64.pow(attempt.saturating_sub(1).min(4)))
}

/// FHIR search's special characters in a value, escaped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '$' | '|') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A path-like `expression` (`Patient.name[0].family`) from an issue; anything
/// else (it could quote a value) is dropped.
fn safe_path(s: &str) -> Option<String> {
    (s.len() <= 200
        && !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'[' | b']' | b'_' | b'-')))
    .then(|| s.to_owned())
}

/// The issues of the `OperationOutcome` in a refusal: severity, code and path,
/// never the server's text (it may quote what was sent).
fn issues_of(status: u16, body: &[u8]) -> Vec<Issue> {
    let outcome: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut issues: Vec<Issue> = outcome["issue"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|i| {
                    let code = i["code"].as_str().unwrap_or_default();
                    let kind = match code {
                        "structure" => IssueType::Structure,
                        "required" => IssueType::Required,
                        "value" | "code-invalid" => IssueType::Value,
                        "too-long" => IssueType::TooLong,
                        "not-found" => IssueType::NotFound,
                        "not-supported" => IssueType::NotSupported,
                        "exception" => IssueType::Exception,
                        "transient" => IssueType::Transient,
                        "business-rule" => IssueType::BusinessRule,
                        "conflict" => IssueType::Conflict,
                        "duplicate" | "multiple-matches" => IssueType::Duplicate,
                        "informational" => IssueType::Informational,
                        _ => IssueType::Invalid,
                    };
                    let severity = match i["severity"].as_str() {
                        Some("warning") => Severity::Warning,
                        Some("information") => Severity::Information,
                        _ => Severity::Error,
                    };
                    let shown = if code.len() <= 40
                        && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
                    {
                        code
                    } else {
                        "invalid"
                    };
                    Issue {
                        severity,
                        code: kind,
                        diagnostics: format!("The EMR refused this ({shown})"),
                        expression: i["expression"][0]
                            .as_str()
                            .or_else(|| i["location"][0].as_str())
                            .and_then(safe_path),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if issues.is_empty() {
        issues.push(Issue::error(
            IssueType::Invalid,
            format!("The EMR refused the request (HTTP {status})"),
        ));
    }
    issues
}

/// A refusal (not 2xx, not transient) as an [`EmrError`].
fn refused(what: &str, answer: &Answer) -> EmrError {
    match answer.status {
        412 => EmrError::PreconditionFailed,
        // A write that collided with another: worth trying again later.
        409 => unavailable(format!("{what}: the EMR answered 409 (conflict)"), None),
        300..=399 => unavailable(
            format!(
                "{what}: the EMR redirected ({}): check INTAKE_EMR_URL",
                answer.status
            ),
            None,
        ),
        status => EmrError::Rejected {
            status,
            issues: issues_of(status, &answer.body),
        },
    }
}

/// A 2xx answer's JSON; a body that is not is the EMR's failure.
fn json_of(what: &str, answer: &Answer) -> Result<Value, EmrError> {
    serde_json::from_slice(&answer.body)
        .map_err(|_| unavailable(format!("{what}: the EMR's answer is not JSON"), None))
}

/// The resources of a `searchset` (matches only, not included resources).
fn page_of(what: &str, answer: &Answer, resource_type: &str) -> Result<Page, EmrError> {
    if !answer.ok() {
        return Err(refused(what, answer));
    }
    let bundle = json_of(what, answer)?;
    if bundle["resourceType"] != "Bundle" {
        return Err(unavailable(
            format!("{what}: the EMR's answer is not a Bundle"),
            None,
        ));
    }
    let resources = bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| {
                    e.pointer("/search/mode")
                        .and_then(Value::as_str)
                        .is_none_or(|m| m == "match")
                })
                .filter_map(|e| e.get("resource"))
                .filter(|r| r["resourceType"] == resource_type)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let more = bundle["link"]
        .as_array()
        .is_some_and(|links| links.iter().any(|l| l["relation"] == "next"));
    Ok(Page { resources, more })
}

/// Whether sending `bundle` twice does what sending it once does: every create in
/// it is conditional.
fn replay_of(bundle: &Value) -> Replay {
    let all_conditional = bundle["entry"].as_array().is_none_or(|entries| {
        entries.iter().all(|e| {
            e.pointer("/request/method").and_then(Value::as_str) != Some("POST")
                || e.pointer("/request/ifNoneExist")
                    .and_then(Value::as_str)
                    .is_some_and(|c| !c.is_empty())
        })
    });
    if all_conditional {
        Replay::Safe
    } else {
        Replay::Unsafe
    }
}

/// The blocking searches for `record`: each a pass name (for logs) and its
/// parameters. Values as written: the server does its own matching.
fn blocking_searches(
    record: &matching::PatientRecord,
) -> Vec<(&'static str, Vec<(String, String)>)> {
    let trimmed = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let given = record
        .given
        .first()
        .and_then(|g| g.split_whitespace().next())
        .map(str::to_owned);
    let family = record.family.as_deref().and_then(trimmed);
    let birth = record
        .birth_date
        .as_deref()
        .map(str::trim)
        .filter(|b| {
            (4..=10).contains(&b.len()) && b.bytes().all(|c| c.is_ascii_digit() || c == b'-')
        })
        .map(str::to_owned);
    let postal = record.postal_code.as_deref().and_then(trimmed);
    let p = |name: &str, value: String| (name.to_owned(), value);
    let mut searches = Vec::new();
    if let (Some(f), Some(b)) = (&family, &birth) {
        searches.push((
            "family+birthdate",
            vec![p("family", escape(f)), p("birthdate", b.clone())],
        ));
    }
    if let (Some(g), Some(b)) = (&given, &birth) {
        searches.push((
            "given+birthdate",
            vec![p("given", escape(g)), p("birthdate", b.clone())],
        ));
    }
    if let (Some(f), Some(g)) = (&family, &given) {
        searches.push((
            "family+given",
            vec![p("family", escape(f)), p("given", escape(g))],
        ));
    }
    for id in record
        .identifiers
        .iter()
        .filter(|i| !i.value.trim().is_empty())
        .take(3)
    {
        let value = match trimmed(&id.system) {
            Some(system) => format!("{}|{}", escape(&system), escape(id.value.trim())),
            None => escape(id.value.trim()),
        };
        searches.push(("identifier", vec![p("identifier", value)]));
    }
    for phone in record.phones.iter().filter_map(|x| trimmed(x)).take(2) {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        if digits != phone && digits.len() >= 7 {
            searches.push(("phone", vec![p("phone", digits)]));
        }
        searches.push(("phone", vec![p("phone", escape(&phone))]));
    }
    for email in record.emails.iter().filter_map(|x| trimmed(x)).take(2) {
        searches.push(("email", vec![p("email", escape(&email))]));
    }
    if let (Some(code), Some(initial)) = (&postal, given.as_deref().and_then(|g| g.chars().next()))
    {
        searches.push((
            "address-postalcode+given-initial",
            vec![
                p("address-postalcode", escape(code)),
                p("given", escape(&initial.to_string())),
            ],
        ));
    }
    for (_, params) in &mut searches {
        params.push(p("_count", SEARCH_COUNT.to_string()));
    }
    let mut seen = std::collections::HashSet::new();
    searches.retain(|(_, params)| seen.insert(params.clone()));
    searches
}

impl Inner {
    /// Sends `call`, retrying as [`Remote`] explains; any answer but 401/403, 429
    /// and 5xx is returned for the caller to read.
    async fn send(&self, call: &Call) -> Result<Answer, EmrError> {
        let url = if call.path.is_empty() {
            self.base.clone()
        } else {
            format!("{}/{}", self.base, call.path)
        };
        let what = call.what;
        let mut attempt = 1;
        let mut renewed = false;
        loop {
            let token = self.auth.token().await?;
            let mut request = self
                .http
                .request(call.method.clone(), &url)
                .header(header::ACCEPT, FHIR_JSON);
            for (name, value) in &call.headers {
                request = request.header(name, value);
            }
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            request = match &call.body {
                Body::Empty => request,
                Body::Json(bytes) => request
                    .header(header::CONTENT_TYPE, FHIR_JSON)
                    .body(bytes.clone()),
                Body::Form(form) => request
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form.clone()),
            };
            let sent = async {
                let res = request.send().await?;
                let status = res.status().as_u16();
                let headers = res.headers().clone();
                let body = res.bytes().await?;
                Ok::<_, reqwest::Error>(Answer {
                    status,
                    headers,
                    body,
                })
            }
            .await;
            let (reason, wait, may_retry) = match sent {
                Ok(a) if a.status == 401 && self.auth.renewable() && !renewed => {
                    // The token expired early or was revoked: one more try with a
                    // new one.
                    renewed = true;
                    self.auth.refused(token.as_deref()).await;
                    continue;
                }
                // Credentials are configuration, not content: deliveries wait for
                // them to be fixed rather than being dead-lettered.
                Ok(a) if a.status == 401 || a.status == 403 => {
                    return Err(unavailable(
                        format!("{what}: the EMR refused our credentials ({})", a.status),
                        None,
                    ));
                }
                Ok(a) if a.status == 429 || a.status >= 500 => (
                    format!("{what}: the EMR answered {}", a.status),
                    retry_after(&a.headers),
                    // 429 and 503 say the request was not acted on.
                    a.status == 429 || a.status == 503 || call.replay == Replay::Safe,
                ),
                Ok(a) => return Ok(a),
                Err(e) if e.is_timeout() => {
                    return Err(unavailable(
                        format!("{what}: no answer within {} ms", self.timeout.as_millis()),
                        None,
                    ));
                }
                Err(e) => (
                    format!("{what}: {}", auth::describe(&e)),
                    None,
                    e.is_connect() || call.replay == Replay::Safe,
                ),
            };
            let delay = wait.unwrap_or_else(|| backoff(attempt));
            if !may_retry || attempt >= ATTEMPTS || delay > MAX_WAIT {
                return Err(unavailable(reason, wait));
            }
            tracing::debug!(
                emr.request = what,
                emr.attempt = attempt,
                emr.wait_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "EMR request failed; trying again"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// A search of `resource_type` with `params`: `POST _search` (patient data
    /// stays out of URLs), else `GET`.
    async fn search(
        &self,
        resource_type: &str,
        params: &[(String, String)],
    ) -> Result<Page, EmrError> {
        let form = serde_urlencoded::to_string(params)
            .map_err(|_| rejected_here(IssueType::Value, "Not a valid search"))?;
        // `handling=strict`: a parameter the EMR does not know is an error, not
        // ignored (which would find every resource of the type).
        let strict = HeaderName::from_static("prefer");
        if !self.get_search.load(Ordering::Relaxed) {
            let mut call = Call::new("search", Method::POST, format!("{resource_type}/_search"))
                .header(strict.clone(), "handling=strict")?;
            call.body = Body::Form(form.clone());
            let answer = self.send(&call).await?;
            if !matches!(answer.status, 404 | 405 | 501) {
                return page_of("search", &answer, resource_type);
            }
            tracing::info!(
                emr.status = answer.status,
                "the EMR does not take POST searches: searching with GET"
            );
            self.get_search.store(true, Ordering::Relaxed);
        }
        let call = Call::new("search", Method::GET, format!("{resource_type}?{form}"))
            .header(strict, "handling=strict")?;
        page_of("search", &self.send(&call).await?, resource_type)
    }

    /// `resource_type/id`, or `None` if the EMR has none.
    async fn read(&self, resource_type: &str, id: &str) -> Result<Option<Value>, EmrError> {
        if !crate::questionnaires::is_valid_id(id) {
            return Ok(None);
        }
        let answer = self
            .send(&Call::new(
                "read",
                Method::GET,
                format!("{resource_type}/{id}"),
            ))
            .await?;
        match answer.status {
            404 | 410 => Ok(None),
            _ if answer.ok() => json_of("read", &answer).map(Some),
            _ => Err(refused("read", &answer)),
        }
    }

    /// The resource a write answered with, else the one its `Location` names
    /// (a server may answer without a body).
    async fn written(
        &self,
        what: &str,
        answer: &Answer,
        resource_type: &str,
    ) -> Result<Value, EmrError> {
        if !answer.ok() {
            return Err(refused(what, answer));
        }
        if let Ok(resource) = serde_json::from_slice::<Value>(&answer.body)
            && resource["resourceType"] == resource_type
        {
            return Ok(resource);
        }
        let id = answer
            .headers
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| {
                let path = l.split("/_history").next().unwrap_or(l);
                let (kind, id) = path.rsplit_once('/')?;
                kind.ends_with(resource_type).then(|| id.to_owned())
            })
            .ok_or_else(|| {
                unavailable(
                    format!("{what}: the EMR answered without the resource"),
                    None,
                )
            })?;
        self.read(resource_type, &id).await?.ok_or_else(|| {
            unavailable(
                format!("{what}: the written resource cannot be read back"),
                None,
            )
        })
    }

    /// How many patients the EMR holds: configured, else asked (and cached).
    async fn population(&self) -> Result<usize, EmrError> {
        if let Some(n) = self.patients {
            return Ok(n);
        }
        let cached = *self
            .population
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((n, _)) = cached.filter(|(_, at)| at.elapsed() < POPULATION_TTL) {
            return Ok(n);
        }
        let call = Call::new("count", Method::GET, "Patient?_summary=count");
        let counted = match self.send(&call).await {
            Ok(answer) if answer.ok() => json_of("count", &answer)?["total"]
                .as_u64()
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            Ok(_) | Err(EmrError::Rejected { .. } | EmrError::PreconditionFailed) => None,
            Err(e) => return Err(e),
        };
        let n = counted.unwrap_or_else(|| {
            tracing::warn!(
                emr.population = FALLBACK_POPULATION,
                "the EMR does not count its patients (Patient?_summary=count): set \
                 INTAKE_EMR_PATIENTS; matching assumes a large population"
            );
            FALLBACK_POPULATION
        });
        *self
            .population
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((n, Instant::now()));
        Ok(n)
    }
}

#[async_trait]
impl Emr for Remote {
    fn kind(&self) -> &'static str {
        "remote"
    }

    async fn search_patients(&self, query: &str) -> Result<Vec<Value>, EmrError> {
        let params = crate::store::search::pairs(query)
            .ok_or_else(|| rejected_here(IssueType::Value, "Not a valid search"))?;
        Ok(self.inner.search("Patient", &params).await?.resources)
    }

    async fn search(&self, resource_type: &str, query: &str) -> Result<Vec<Value>, EmrError> {
        let mut params = crate::store::search::pairs(query)
            .ok_or_else(|| rejected_here(IssueType::Value, "Not a valid search"))?;
        // One page, as large as the EMR gives: `Page` does not follow `next`
        // links, so a search with more is refused rather than cut short.
        if !params.iter().any(|(k, _)| k == "_count") {
            params.push(("_count".into(), super::SEARCH_LIMIT.to_string()));
        }
        let page = self.inner.search(resource_type, &params).await?;
        if page.more {
            return Err(rejected_here(
                IssueType::TooCostly,
                "The EMR has more than one page of results for this search: narrow it",
            ));
        }
        Ok(page.resources)
    }

    async fn read_patient(&self, id: &str) -> Result<Option<Value>, EmrError> {
        self.inner.read("Patient", id).await
    }

    async fn create_patient(
        &self,
        patient: Value,
        if_none_exist: Option<&str>,
    ) -> Result<Value, EmrError> {
        let mut call = Call::new("create", Method::POST, "Patient")
            .json(&patient)
            .header(HeaderName::from_static("prefer"), "return=representation")?;
        call.replay = Replay::Unsafe;
        if let Some(condition) = if_none_exist {
            call = call.header(HeaderName::from_static("if-none-exist"), condition)?;
            call.replay = Replay::Safe;
        }
        let answer = self.inner.send(&call).await?;
        self.inner.written("create", &answer, "Patient").await
    }

    async fn update_patient(
        &self,
        id: &str,
        mut patient: Value,
        if_match: Option<&str>,
    ) -> Result<Value, EmrError> {
        if !crate::questionnaires::is_valid_id(id) {
            return Err(rejected_here(IssueType::Value, "Not a valid id"));
        }
        if let Some(o) = patient.as_object_mut() {
            o.insert("id".into(), Value::String(id.to_owned()));
        }
        let mut call = Call::new("update", Method::PUT, format!("Patient/{id}"))
            .json(&patient)
            .header(HeaderName::from_static("prefer"), "return=representation")?;
        if let Some(version) = if_match {
            let version = version.trim();
            let etag = if version.starts_with("W/") || version.starts_with('"') {
                version.to_owned()
            } else {
                format!("W/\"{version}\"")
            };
            call = call.header(header::IF_MATCH, &etag)?;
        }
        let answer = self.inner.send(&call).await?;
        self.inner.written("update", &answer, "Patient").await
    }

    async fn transaction(&self, bundle: Value) -> Result<Value, EmrError> {
        let mut call = Call::new("transaction", Method::POST, "").json(&bundle);
        call.replay = replay_of(&bundle);
        let answer = self.inner.send(&call).await?;
        if !answer.ok() {
            return Err(refused("transaction", &answer));
        }
        let response = json_of("transaction", &answer)?;
        if response["resourceType"] != "Bundle" {
            return Err(unavailable(
                "transaction: the EMR's answer is not a Bundle".into(),
                None,
            ));
        }
        Ok(response)
    }

    async fn read_questionnaire(&self, url: &str) -> Result<Option<Value>, EmrError> {
        let (url, version) = match url.split_once('|') {
            Some((url, version)) => (url, Some(version)),
            None => (url, None),
        };
        let mut params = vec![("url".to_owned(), url.to_owned())];
        if let Some(version) = version {
            params.push(("version".to_owned(), version.to_owned()));
        }
        let page = self.inner.search("Questionnaire", &params).await?;
        Ok(page.resources.into_iter().next())
    }

    fn hold_pending(&self, key: &str, record: &matching::PatientRecord) {
        self.inner
            .pending
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned(), record.clone());
    }

    fn release_pending(&self, key: &str) {
        self.inner
            .pending
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    async fn find_matches(
        &self,
        record: &matching::PatientRecord,
        options: &matching::MatchOptions,
    ) -> Result<Vec<Found>, EmrError> {
        let inner = &*self.inner;
        let searches = blocking_searches(record);
        // Futures collected first: a closure inside the stream trips the compiler's
        // `Send` check of async_trait's boxed future.
        let searches: Vec<_> = searches
            .into_iter()
            .map(|(pass, params)| async move { (pass, inner.search("Patient", &params).await) })
            .collect();
        let mut answers =
            futures_util::stream::iter(searches).buffer_unordered(CONCURRENT_SEARCHES);
        // By id, so the index (and ties) do not depend on which answer came first.
        let mut candidates: BTreeMap<String, Value> = BTreeMap::new();
        let mut capped = Vec::new();
        while let Some((pass, answer)) = answers.next().await {
            match answer {
                Ok(page) => {
                    if page.more {
                        capped.push(pass);
                    }
                    for patient in page.resources {
                        if let Some(id) = patient["id"].as_str() {
                            candidates.insert(id.to_owned(), patient);
                        }
                    }
                }
                // A search the EMR does not support (an unknown parameter): the
                // other passes still find the patient.
                Err(EmrError::Rejected { status, .. }) => {
                    tracing::warn!(
                        emr.search_pass = pass,
                        emr.status = status,
                        "the EMR refused a blocking search: skipped"
                    );
                }
                // Missing candidates would make a returning patient look new.
                Err(e) => return Err(e),
            }
        }
        drop(answers);
        if !capped.is_empty() {
            capped.sort_unstable();
            capped.dedup();
            tracing::warn!(match.capped = ?capped, "a blocking search brought a full page: candidates were cut");
        }
        let pending: Vec<(String, matching::PatientRecord)> = inner
            .pending
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        let population = inner
            .population()
            .await?
            .saturating_add(pending.len())
            .max(candidates.len() + pending.len());
        let mut index = matching::Index::new(matching::Config {
            auto_refit: false,
            population: Some(population),
            ..inner.matching.clone()
        });
        for (id, patient) in &candidates {
            index.upsert(id, &crate::fhir::patient::to_record(patient));
        }
        for (key, pending) in &pending {
            index.upsert(key, pending);
        }
        let outcome = index.find(record, options);
        Ok(outcome
            .candidates
            .into_iter()
            .map(|candidate| {
                // A pending one has no resource yet: the pipeline knows it by its key.
                let resource = candidates
                    .get(&candidate.id)
                    .cloned()
                    .unwrap_or(Value::Null);
                Found {
                    candidate,
                    resource,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static(" 7 "));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(90));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(
            wait > Duration::from_secs(85) && wait <= Duration::from_secs(90),
            "{wait:?}"
        );
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(90));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_str(&past).unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn search_values_escape_fhirs_separators() {
        assert_eq!(escape(r"O,Brien|x$y\z"), r"O\,Brien\|x\$y\\z");
    }

    #[test]
    fn blocking_searches_use_what_the_record_has_each_with_a_count() {
        let record = matching::PatientRecord {
            given: vec!["Mary Ann".into()],
            family: Some(" de la Cruz ".into()),
            birth_date: Some("1980-02-03".into()),
            phones: vec!["(555) 010-0199".into()],
            emails: vec!["m@example.org".into()],
            postal_code: Some("02139".into()),
            identifiers: vec![matching::Identifier {
                system: "urn:mrn".into(),
                value: "A|1".into(),
            }],
            ..matching::PatientRecord::default()
        };
        let searches = blocking_searches(&record);
        let shown: Vec<String> = searches
            .iter()
            .map(|(pass, params)| {
                assert_eq!(params.last().unwrap(), &("_count".into(), "50".into()));
                let params: Vec<String> = params[..params.len() - 1]
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                format!("{pass}: {}", params.join("&"))
            })
            .collect();
        assert_eq!(
            shown,
            [
                "family+birthdate: family=de la Cruz&birthdate=1980-02-03",
                "given+birthdate: given=Mary&birthdate=1980-02-03",
                "family+given: family=de la Cruz&given=Mary",
                r"identifier: identifier=urn:mrn|A\|1",
                "phone: phone=5550100199",
                "phone: phone=(555) 010-0199",
                "email: email=m@example.org",
                "address-postalcode+given-initial: address-postalcode=02139&given=M",
            ]
        );
        // Nothing to search by: no search.
        assert!(blocking_searches(&matching::PatientRecord::default()).is_empty());
        // A malformed birth date is not sent.
        let odd = matching::PatientRecord {
            family: Some("Smith".into()),
            birth_date: Some("3rd of May".into()),
            ..matching::PatientRecord::default()
        };
        assert!(blocking_searches(&odd).is_empty());
    }

    #[test]
    fn a_transaction_is_replayable_only_when_every_create_is_conditional() {
        let entry = |condition: Option<&str>| {
            let mut request = json!({"method": "POST", "url": "Patient"});
            if let Some(c) = condition {
                request["ifNoneExist"] = json!(c);
            }
            json!({"resource": {"resourceType": "Patient"}, "request": request})
        };
        let bundle = |entries: Vec<Value>| json!({"resourceType": "Bundle", "entry": entries});
        assert_eq!(
            replay_of(&bundle(vec![
                entry(Some("identifier=a|1")),
                entry(Some("_tag=a|1"))
            ])),
            Replay::Safe
        );
        assert_eq!(
            replay_of(&bundle(vec![entry(Some("identifier=a|1")), entry(None)])),
            Replay::Unsafe
        );
        let put = json!({"resource": {}, "request": {"method": "PUT", "url": "Patient/1"}});
        assert_eq!(replay_of(&bundle(vec![put])), Replay::Safe);
    }

    #[test]
    fn a_refusals_issues_keep_codes_and_paths_never_the_servers_words() {
        let body = json!({"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "value", "diagnostics": "Invalid date 1974-13-01",
             "details": {"text": "Jane's birth date"}, "expression": ["Patient.birthDate"]},
            {"severity": "warning", "code": "Weird Code 1974", "location": ["Patient.name.where(text='Jane')"]},
        ]})
        .to_string();
        let issues = issues_of(400, body.as_bytes());
        assert_eq!(issues.len(), 2);
        assert_eq!(issues[0].code, IssueType::Value);
        assert_eq!(issues[0].expression.as_deref(), Some("Patient.birthDate"));
        assert_eq!(issues[0].diagnostics, "The EMR refused this (value)");
        assert_eq!(issues[1].severity, Severity::Warning);
        assert_eq!(issues[1].expression, None);
        let all = format!("{issues:?}");
        for leaked in ["1974", "Jane"] {
            assert!(!all.contains(leaked), "{all}");
        }
        // Not an OperationOutcome: one issue naming the status.
        let issues = issues_of(422, b"<html>Jane</html>");
        assert_eq!(
            issues[0].diagnostics,
            "The EMR refused the request (HTTP 422)"
        );
    }
}
