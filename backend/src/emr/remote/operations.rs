//! The EMR operations [`Remote`](super::Remote) is made of: a search (`POST
//! _search`, `GET` after a 405), a read, the reading of a write's answer, the
//! EMR's patient count.

use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::Instant;

use reqwest::Method;
use reqwest::header::{self, HeaderName};
use serde_json::Value;

use super::client::{Answer, Body, Call, rejected_here, unavailable};
use super::refusals::{json_of, refused};
use super::searches::{Page, page_of};
use super::{FALLBACK_POPULATION, Inner, POPULATION_TTL};
use crate::emr::EmrError;
use crate::fhir::outcome::IssueType;

impl Inner {
    /// A search of `resource_type` with `params`: `POST _search` (patient data
    /// stays out of URLs), else `GET`.
    pub(crate) async fn search(
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
    pub(crate) async fn read(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<Value>, EmrError> {
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
    pub(crate) async fn written(
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
    pub(crate) async fn population(&self) -> Result<usize, EmrError> {
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
