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
//!
//! `client.rs` sends one request with its retries, `searches.rs` runs a match's
//! blocking searches, `refusals.rs` reads what the EMR answered.

mod client;
mod operations;
mod refusals;
mod searches;

pub(crate) use client::{Call, Replay, rejected_here, replay_of, unavailable};
pub(crate) use refusals::{json_of, refused};
pub(crate) use searches::blocking_searches;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_trait::async_trait;
use futures_util::StreamExt as _;
use reqwest::Method;
use reqwest::header::{self, HeaderName};
use serde_json::Value;

use super::auth::{Auth, SigningKey, Smart};
use super::{Emr, EmrError, Found};
pub use crate::config::RemoteArgs;
use crate::fhir::outcome::IssueType;

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

    use std::time::{Duration, SystemTime};

    use reqwest::header::{self, HeaderMap, HeaderValue};
    use serde_json::{Value, json};

    use super::client::*;
    use super::refusals::*;
    use super::searches::*;
    use crate::fhir::outcome::{IssueType, Severity};

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
