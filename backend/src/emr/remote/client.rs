//! One request to the EMR and its retries: doubling jittered delays, the
//! EMR's `Retry-After`, a token renewed once on 401, a plain create sent again
//! only when the EMR certainly did not act.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::{ATTEMPTS, Inner, MAX_WAIT};
use crate::emr::EmrError;
use crate::emr::auth::{self};
use crate::fhir::FHIR_JSON;
use crate::fhir::outcome::{Issue, IssueType};

/// Whether a request may be sent again after an answer that does not say it
/// was not acted on (a 500, a broken connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Reads, searches, updates, conditional creates: twice is once.
    Safe,
    /// A plain create: retried only when the EMR certainly did not act (429,
    /// 503, no connection).
    Unsafe,
}

#[derive(Debug)]
pub(crate) enum Body {
    Empty,
    Json(Vec<u8>),
    Form(String),
}

/// One request to the EMR.
#[derive(Debug)]
pub(crate) struct Call {
    /// What it is, for error reasons (`search`, `transaction`).
    pub(crate) what: &'static str,
    pub(crate) method: Method,
    /// Relative to the base (`Patient/123`); empty for the base itself.
    pub(crate) path: String,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Body,
    pub(crate) replay: Replay,
}

impl Call {
    pub(crate) fn new(what: &'static str, method: Method, path: impl Into<String>) -> Self {
        Self {
            what,
            method,
            path: path.into(),
            headers: Vec::new(),
            body: Body::Empty,
            replay: Replay::Safe,
        }
    }

    pub(crate) fn header(mut self, name: HeaderName, value: &str) -> Result<Self, EmrError> {
        let value = HeaderValue::from_str(value).map_err(|_| {
            rejected_here(IssueType::Value, "A header value the EMR cannot be sent")
        })?;
        self.headers.push((name, value));
        Ok(self)
    }

    pub(crate) fn json(mut self, resource: &Value) -> Self {
        self.body = Body::Json(resource.to_string().into_bytes());
        self
    }
}

/// The EMR's answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    pub(crate) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A 400 of our own making: the request could not be sent as asked.
pub(crate) fn rejected_here(code: IssueType, text: &str) -> EmrError {
    EmrError::Rejected {
        status: 400,
        issues: vec![Issue::error(code, text)],
    }
}

pub(crate) fn unavailable(reason: String, retry_after: Option<Duration>) -> EmrError {
    EmrError::Unavailable {
        reason,
        retry_after_ms: retry_after.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    }
}

/// `Retry-After`: seconds, or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds.min(86_400)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

/// The wait before attempt `attempt + 1` when the EMR did not say: 100 ms, 400 ms.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 4u64.pow(attempt.saturating_sub(1).min(4)))
}

/// Whether sending `bundle` twice does what sending it once does: every create in
/// it is conditional.
pub(crate) fn replay_of(bundle: &Value) -> Replay {
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

impl Inner {
    /// Sends `call`, retrying as [`Remote`] explains; any answer but 401/403, 429
    /// and 5xx is returned for the caller to read.
    pub(crate) async fn send(&self, call: &Call) -> Result<Answer, EmrError> {
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
}
