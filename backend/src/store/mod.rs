//! The embedded FHIR R4 store: every resource the server keeps (Patient,
//! QuestionnaireResponse, Provenance, Task; Questionnaires have their own module),
//! every version kept, searchable, written in all-or-nothing transactions.
//!
//! One writer at a time (a lock in front of SQLite's own), so a conditional create
//! cannot race another write; reads run in parallel. Every Patient write reaches the
//! matching index after it commits.

pub mod bundle;
pub mod patients;
pub mod search;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use crate::clock::{Clock, fhir_instant};
use crate::fhir::outcome::{Issue, IssueType};
use crate::fhir::resource;
use crate::questionnaires::is_valid_id;
use crate::store::patients::PatientIndex;
use search::{Condition, Prefix, Query, SortKey, StringMatch};

/// One version of a stored resource.
#[derive(Clone, Debug)]
pub struct Stored {
    /// Its type.
    pub resource_type: String,
    /// Its id.
    pub id: String,
    /// Its version.
    pub version_id: i64,
    /// When this version was written (FHIR instant).
    pub last_updated: String,
    /// The resource, `id` and `meta` included.
    pub resource: Value,
}

impl Stored {
    /// `Type/id`.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.resource_type, self.id)
    }

    /// `W/"version"`.
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version_id)
    }
}

/// One write.
#[derive(Clone, Debug)]
pub enum Request {
    /// `POST Type` (with `If-None-Exist`, a conditional create).
    Create {
        /// The resource, whose `resourceType` names its type.
        resource: Value,
        /// A search (`identifier=sys|val`): if it finds one, nothing is written.
        if_none_exist: Option<String>,
        /// The entry's `fullUrl` (`urn:uuid:…`), which references may use.
        full_url: Option<String>,
    },
    /// `PUT Type/id` (creating it if absent).
    Update {
        /// The id.
        id: String,
        /// The resource.
        resource: Value,
        /// `If-Match`: the version the client last read.
        if_match: Option<i64>,
        /// The entry's `fullUrl`.
        full_url: Option<String>,
    },
}

/// What a write did.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// A new resource.
    Created(Stored),
    /// A new version of an existing one.
    Updated(Stored),
    /// A conditional create found this one; nothing written.
    Existing(Stored),
}

impl Outcome {
    /// The stored resource.
    pub fn stored(&self) -> &Stored {
        match self {
            Outcome::Created(s) | Outcome::Updated(s) | Outcome::Existing(s) => s,
        }
    }

    /// The HTTP status of this outcome.
    pub fn status(&self) -> u16 {
        match self {
            Outcome::Created(_) => 201,
            Outcome::Updated(_) | Outcome::Existing(_) => 200,
        }
    }
}

/// Why nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The content is not acceptable (422).
    #[error("invalid resource")]
    Invalid(Vec<Issue>),
    /// `If-Match` names an older version, or a conditional create matched several (412).
    #[error("precondition failed")]
    PreconditionFailed(Issue),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    db: SqlitePool,
    clock: Arc<dyn Clock>,
    writer: Arc<tokio::sync::Mutex<()>>,
    patients: Arc<PatientIndex>,
}

const SELECT: &str = "SELECT resource_type, id, version_id, last_updated, body FROM resource";

fn row_to_stored(row: (String, String, i64, String, String)) -> Option<Stored> {
    let (resource_type, id, version_id, last_updated, body) = row;
    Some(Stored {
        resource_type,
        id,
        version_id,
        last_updated,
        resource: serde_json::from_str(&body).ok()?,
    })
}

impl Store {
    /// A store over `db`, keeping `patients` up to date.
    pub fn new(db: SqlitePool, clock: Arc<dyn Clock>, patients: Arc<PatientIndex>) -> Self {
        Self {
            db,
            clock,
            writer: Arc::new(tokio::sync::Mutex::new(())),
            patients,
        }
    }

    /// The database.
    pub fn db(&self) -> &SqlitePool {
        &self.db
    }

    /// The matching index over the stored Patients.
    pub fn patients(&self) -> &PatientIndex {
        &self.patients
    }

    /// Indexes the search parameters of resources stored before the search index
    /// existed (or written by an older version). Run once at start.
    pub async fn index_missing(&self) -> Result<usize, sqlx::Error> {
        let rows: Vec<(String, String, i64, String, String)> = sqlx::query_as(
            "SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.body FROM resource r
             WHERE r.resource_type <> 'Questionnaire' AND NOT EXISTS
               (SELECT 1 FROM search_index s WHERE s.resource_type = r.resource_type AND s.id = r.id)",
        )
        .fetch_all(&self.db)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let _guard = self.writer.lock().await;
        let mut tx = crate::db::begin_write(&self.db).await?;
        let count = rows.len();
        for row in rows {
            if let Some(stored) = row_to_stored(row) {
                index(&mut tx, &stored).await?;
            }
        }
        tx.commit().await?;
        Ok(count)
    }

    /// The current version of `Type/id`.
    pub async fn read(&self, resource_type: &str, id: &str) -> Result<Option<Stored>, sqlx::Error> {
        let row = sqlx::query_as(&format!("{SELECT} WHERE resource_type = ? AND id = ?"))
            .bind(resource_type)
            .bind(id)
            .fetch_optional(&self.db)
            .await?;
        Ok(row.and_then(row_to_stored))
    }

    /// Version `version_id` of `Type/id`.
    pub async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version_id: i64,
    ) -> Result<Option<Stored>, sqlx::Error> {
        let row = sqlx::query_as(
            "SELECT resource_type, id, version_id, last_updated, body FROM resource_version
             WHERE resource_type = ? AND id = ? AND version_id = ?",
        )
        .bind(resource_type)
        .bind(id)
        .bind(version_id)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.and_then(row_to_stored))
    }

    /// Every version of `Type/id`, newest first.
    pub async fn history(&self, resource_type: &str, id: &str) -> Result<Vec<Stored>, sqlx::Error> {
        let rows: Vec<(String, String, i64, String, String)> = sqlx::query_as(
            "SELECT resource_type, id, version_id, last_updated, body FROM resource_version
             WHERE resource_type = ? AND id = ? ORDER BY version_id DESC",
        )
        .bind(resource_type)
        .bind(id)
        .fetch_all(&self.db)
        .await?;
        Ok(rows.into_iter().filter_map(row_to_stored).collect())
    }

    /// The current versions of these ids that exist, in that order.
    pub async fn read_many(
        &self,
        resource_type: &str,
        ids: &[String],
    ) -> Result<Vec<Stored>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = QueryBuilder::<Sqlite>::new(SELECT);
        q.push(" WHERE resource_type = ")
            .push_bind(resource_type)
            .push(" AND id IN (");
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(id);
        }
        q.push(")");
        // The text depends on how many ids: not worth a place in the statement cache.
        let rows: Vec<(String, String, i64, String, String)> = q
            .build_query_as()
            .persistent(false)
            .fetch_all(&self.db)
            .await?;
        let mut found: HashMap<String, Stored> = rows
            .into_iter()
            .filter_map(row_to_stored)
            .map(|s| (s.id.clone(), s))
            .collect();
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// The resources of `resource_type` matching `query`: one page, and the total.
    pub async fn search(
        &self,
        resource_type: &str,
        query: &Query,
    ) -> Result<(Vec<Stored>, usize), sqlx::Error> {
        let mut conn = self.db.acquire().await?;
        search_in(&mut conn, resource_type, query).await
    }

    /// Applies every request in one transaction: all or nothing. References to an
    /// entry's `fullUrl` are rewritten to the id it gets.
    pub async fn transaction(&self, requests: Vec<Request>) -> Result<Vec<Outcome>, StoreError> {
        check_requests(&requests)?;
        let _guard = self.writer.lock().await;
        let mut tx = crate::db::begin_write(&self.db).await?;
        let outcomes = apply(&mut tx, &fhir_instant(self.clock.now()), requests).await?;
        tx.commit().await?;
        drop(_guard);
        self.patients
            .apply_stored(outcomes.iter().map(Outcome::stored));
        Ok(outcomes)
    }

    /// Holds the store's single-writer lock, for a caller that writes resources
    /// in a transaction of its own with [`Store::apply_in`].
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writer.lock().await
    }

    /// Applies `requests` inside the caller's transaction (the caller holds
    /// [`Store::lock`] and calls [`Store::committed`] once it commits).
    pub async fn apply_in(
        &self,
        tx: &mut SqliteConnection,
        requests: Vec<Request>,
    ) -> Result<Vec<Outcome>, StoreError> {
        check_requests(&requests)?;
        apply(tx, &fhir_instant(self.clock.now()), requests).await
    }

    /// New resources, each with a new id and its `meta`, references to another's
    /// `fullUrl` resolved, without touching the database: what
    /// [`Store::apply_in`] would write for these plain creates (no condition),
    /// for a caller that writes many sets of them at once with
    /// [`Store::insert_created`]. Checked as `apply_in` checks them.
    pub fn prepare_creates(&self, creates: Vec<Request>) -> Result<Vec<Stored>, StoreError> {
        self.check_creates(&creates)?;
        Ok(self.prepare_checked_creates(creates))
    }

    /// Whether [`Store::prepare_creates`] would accept these (the same check,
    /// which parses each resource as FHIR: a caller can make it where it costs
    /// less, and then call [`Store::prepare_checked_creates`]).
    pub fn check_creates(&self, creates: &[Request]) -> Result<(), StoreError> {
        check_requests(creates)?;
        if creates.iter().all(|r| {
            matches!(
                r,
                Request::Create {
                    if_none_exist: None,
                    ..
                }
            )
        }) {
            Ok(())
        } else {
            Err(not_plain())
        }
    }

    /// [`Store::prepare_creates`] for requests [`Store::check_creates`] accepted
    /// (a request that is not a plain create is left out).
    pub fn prepare_checked_creates(&self, creates: Vec<Request>) -> Vec<Stored> {
        let last_updated = fhir_instant(self.clock.now());
        let mut resolved: HashMap<String, String> = HashMap::new();
        let mut planned = Vec::with_capacity(creates.len());
        for request in creates {
            let Request::Create {
                resource,
                if_none_exist: None,
                full_url,
            } = request
            else {
                continue;
            };
            let id = new_id();
            if let Some(url) = full_url {
                resolved.insert(url, format!("{}/{id}", type_of_value(&resource)));
            }
            planned.push((resource, id));
        }
        planned
            .into_iter()
            .map(|(mut resource, id)| {
                rewrite_references(&mut resource, &resolved);
                version(resource, id, 1, &last_updated)
            })
            .collect()
    }

    /// Writes resources made by [`Store::prepare_creates`] inside the caller's
    /// transaction (the caller holds [`Store::lock`] and calls
    /// [`Store::inserted`] once it commits).
    pub async fn insert_created(
        &self,
        tx: &mut SqliteConnection,
        stored: &[Stored],
    ) -> Result<(), sqlx::Error> {
        let written: Vec<(&Stored, bool)> = stored.iter().map(|s| (s, true)).collect();
        write_all(tx, &written).await
    }

    /// Tells the matching index about writes made with [`Store::apply_in`].
    pub fn committed(&self, outcomes: &[Outcome]) {
        self.patients
            .apply_stored(outcomes.iter().map(Outcome::stored));
    }

    /// Tells the matching index about writes made with [`Store::insert_created`].
    pub fn inserted(&self, stored: &[Stored]) {
        self.patients.apply_stored(stored);
    }

    /// Applies each request on its own (a `batch`): one's failure does not undo another.
    pub async fn batch(&self, requests: Vec<Request>) -> Vec<Result<Outcome, StoreError>> {
        let mut out = Vec::with_capacity(requests.len());
        for request in requests {
            out.push(
                self.transaction(vec![request])
                    .await
                    .map(|mut o| o.remove(0)),
            );
        }
        out
    }
}

fn not_plain() -> StoreError {
    StoreError::Invalid(vec![Issue::error(
        IssueType::NotSupported,
        "Only creates without a condition can be prepared",
    )])
}

/// The type a request writes.
fn type_of(request: &Request) -> &str {
    let resource = match request {
        Request::Create { resource, .. } | Request::Update { resource, .. } => resource,
    };
    resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn check_requests(requests: &[Request]) -> Result<(), StoreError> {
    let mut issues = Vec::new();
    for (i, request) in requests.iter().enumerate() {
        // Where in the entry: the resource's own element when the check named one.
        let at = |issue: Issue| {
            let path = match &issue.expression {
                Some(inner) => format!("entry[{i}].resource.{inner}"),
                None => format!("entry[{i}].resource"),
            };
            issue.at(path)
        };
        let resource_type = type_of(request);
        if !resource::STORED_TYPES.contains(&resource_type) || resource_type == "Questionnaire" {
            issues.push(at(Issue::error(
                IssueType::NotSupported,
                "This server stores Patient, QuestionnaireResponse, Provenance and Task here",
            )));
            continue;
        }
        let (resource, id) = match request {
            Request::Create { resource, .. } => (resource, None),
            Request::Update { resource, id, .. } => (resource, Some(id)),
        };
        if let Err(issue) = resource::check(resource_type, resource) {
            issues.push(at(issue));
        }
        if let Some(id) = id {
            if !is_valid_id(id) {
                issues.push(
                    Issue::error(
                        IssueType::Value,
                        "The id must be 1 to 64 letters, digits, '-' or '.'",
                    )
                    .at(format!("entry[{i}].request.url")),
                );
            }
            if let Some(own) = resource.get("id").and_then(Value::as_str)
                && own != id
            {
                issues.push(at(Issue::error(
                    IssueType::Invalid,
                    "The resource's id differs from the id in the URL",
                )
                .at("id")));
            }
        }
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Invalid(issues))
    }
}

/// What the first pass decided for each request.
enum Plan {
    /// Write a version; `fresh` when the id was made here (nothing can be indexed
    /// under it yet).
    Write {
        id: String,
        existed: Option<i64>,
        fresh: bool,
    },
    Existing(Stored),
}

async fn apply(
    tx: &mut SqliteConnection,
    last_updated: &str,
    requests: Vec<Request>,
) -> Result<Vec<Outcome>, StoreError> {
    // First pass: ids for every entry, so references between entries resolve.
    let mut plans = Vec::with_capacity(requests.len());
    let mut resolved: HashMap<String, String> = HashMap::new();
    for (i, request) in requests.iter().enumerate() {
        let resource_type = type_of(request).to_owned();
        let (plan, full_url) = match request {
            Request::Create {
                if_none_exist,
                full_url,
                ..
            } => {
                let existing = match if_none_exist {
                    Some(condition) => conditional(tx, &resource_type, condition, i).await?,
                    None => None,
                };
                let plan = match existing {
                    Some(s) => Plan::Existing(s),
                    None => Plan::Write {
                        id: new_id(),
                        existed: None,
                        fresh: true,
                    },
                };
                (plan, full_url)
            }
            Request::Update {
                id,
                if_match,
                full_url,
                ..
            } => {
                let current: Option<i64> = sqlx::query_scalar(
                    "SELECT version_id FROM resource WHERE resource_type = ? AND id = ?",
                )
                .bind(&resource_type)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(expected) = if_match
                    && current != Some(*expected)
                {
                    return Err(StoreError::PreconditionFailed(
                        Issue::error(
                            IssueType::Conflict,
                            "The resource has changed since that version was read: read it again",
                        )
                        .at(format!("entry[{i}].request.ifMatch")),
                    ));
                }
                (
                    Plan::Write {
                        id: id.clone(),
                        existed: current,
                        fresh: false,
                    },
                    full_url,
                )
            }
        };
        let id = match &plan {
            Plan::Write { id, .. } => id.clone(),
            Plan::Existing(s) => s.id.clone(),
        };
        if let Some(url) = full_url {
            resolved.insert(url.clone(), format!("{resource_type}/{id}"));
        }
        plans.push(plan);
    }
    // Second pass: the versions, with references to entries rewritten, then
    // written together.
    let mut outcomes = Vec::with_capacity(requests.len());
    let mut fresh_ids = Vec::with_capacity(requests.len());
    for (request, plan) in requests.into_iter().zip(plans) {
        let (Request::Create { mut resource, .. } | Request::Update { mut resource, .. }) = request;
        match plan {
            Plan::Existing(s) => outcomes.push(Outcome::Existing(s)),
            Plan::Write { id, existed, fresh } => {
                rewrite_references(&mut resource, &resolved);
                let stored = version(resource, id, existed.unwrap_or(0) + 1, last_updated);
                fresh_ids.push(fresh);
                outcomes.push(if existed.is_some() {
                    Outcome::Updated(stored)
                } else {
                    Outcome::Created(stored)
                });
            }
        }
    }
    let written: Vec<(&Stored, bool)> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Created(s) | Outcome::Updated(s) => Some(s),
            Outcome::Existing(_) => None,
        })
        .zip(fresh_ids)
        .collect();
    write_all(tx, &written).await?;
    Ok(outcomes)
}

/// `resource` as version `version_id` of `Type/{id}`: `id` and `meta` set.
fn version(mut resource: Value, id: String, version_id: i64, last_updated: &str) -> Stored {
    let resource_type = type_of_value(&resource);
    resource["id"] = id.clone().into();
    let mut meta = resource
        .get("meta")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| Value::Object(Default::default()));
    meta["versionId"] = version_id.to_string().into();
    meta["lastUpdated"] = last_updated.into();
    resource["meta"] = meta;
    Stored {
        resource_type,
        id,
        version_id,
        last_updated: last_updated.to_owned(),
        resource,
    }
}

fn type_of_value(resource: &Value) -> String {
    resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The one resource a conditional create's search finds, if any; several is an error.
async fn conditional(
    tx: &mut SqliteConnection,
    resource_type: &str,
    condition: &str,
    entry: usize,
) -> Result<Option<Stored>, StoreError> {
    let at = format!("entry[{entry}].request.ifNoneExist");
    let pairs = search::pairs(condition).ok_or_else(|| {
        StoreError::Invalid(vec![
            Issue::error(IssueType::Value, "Not a valid search").at(at.clone()),
        ])
    })?;
    let mut query = search::parse(resource_type, &pairs).map_err(|issues| {
        StoreError::Invalid(issues.into_iter().map(|i| i.at(at.clone())).collect())
    })?;
    if query.conditions.is_empty() {
        return Err(StoreError::Invalid(vec![
            Issue::error(
                IssueType::Value,
                "A conditional create needs a search condition",
            )
            .at(at),
        ]));
    }
    query.count = 2;
    query.offset = 0;
    query.summary = search::Summary::Full;
    let (mut found, total) = search_in(tx, resource_type, &query).await?;
    match total {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(StoreError::PreconditionFailed(
            Issue::error(
                IssueType::Duplicate,
                "The condition matches more than one resource",
            )
            .at(at),
        )),
    }
}

fn new_id() -> String {
    // 128 random bits (a UUID's, from the OS) as hex: a valid FHIR id that says
    // nothing about the patient.
    use crate::fhir::extract::IdGenerator as _;
    crate::fhir::extract::RandomIds.uuid().replace('-', "")
}

/// Rewrites every `reference` that names an entry's `fullUrl`.
fn rewrite_references(value: &mut Value, resolved: &HashMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "reference"
                    && let Value::String(s) = v
                    && let Some(to) = resolved.get(s.as_str())
                {
                    *s = to.clone();
                } else {
                    rewrite_references(v, resolved);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| rewrite_references(v, resolved)),
        _ => {}
    }
}

/// Most rows in one multi-row statement: 5 parameters a row stays well under
/// SQLite's limit of 32,766 parameters.
const ROWS_PER_STATEMENT: usize = 1000;

/// `rows` into `table` (`resource` or `resource_version`, which share their
/// columns) in one multi-row statement, followed by `suffix` (an `ON CONFLICT`).
async fn insert_versions(
    tx: &mut SqliteConnection,
    table: &str,
    rows: &[(&Stored, &String)],
    suffix: &str,
) -> Result<(), sqlx::Error> {
    let mut q = QueryBuilder::<Sqlite>::new(format!(
        "INSERT INTO {table} (resource_type, id, version_id, last_updated, body) "
    ));
    q.push_values(rows, |mut b, (s, body)| {
        b.push_bind(&s.resource_type)
            .push_bind(&s.id)
            .push_bind(s.version_id)
            .push_bind(&s.last_updated)
            .push_bind(body.as_str());
    });
    q.push(suffix);
    // The text depends on the row count: not worth a place in the statement cache.
    q.build().persistent(false).execute(&mut *tx).await?;
    Ok(())
}

/// Writes these versions, each with its search terms: the current row, the
/// history row and the index rows. A few multi-row statements for all of them
/// rather than four per resource: each statement is a round trip to SQLite's
/// thread, and a batch of intakes writes hundreds of resources. `true` beside a
/// version whose id was made in this transaction: no index rows to replace.
async fn write_all(
    tx: &mut SqliteConnection,
    written: &[(&Stored, bool)],
) -> Result<(), sqlx::Error> {
    if written.is_empty() {
        return Ok(());
    }
    for (s, fresh) in written {
        if !fresh {
            sqlx::query("DELETE FROM search_index WHERE resource_type = ? AND id = ?")
                .bind(&s.resource_type)
                .bind(&s.id)
                .execute(&mut *tx)
                .await?;
        }
    }
    let bodies: Vec<String> = written
        .iter()
        .map(|(s, _)| s.resource.to_string())
        .collect();
    let rows: Vec<(&Stored, &String)> = written.iter().map(|(s, _)| *s).zip(&bodies).collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        // The current version, and the same rows into the history.
        insert_versions(
            tx,
            "resource",
            chunk,
            " ON CONFLICT (resource_type, id) DO UPDATE SET
               version_id = excluded.version_id, last_updated = excluded.last_updated,
               body = excluded.body",
        )
        .await?;
        insert_versions(tx, "resource_version", chunk, "").await?;
    }
    let mut terms: Vec<(&Stored, search::Term)> = Vec::new();
    for (s, _) in written {
        terms.extend(
            search::terms(&s.resource_type, &s.resource)
                .into_iter()
                .map(|t| (*s, t)),
        );
        // Every resource has at least this row, so `index_missing` can tell it was indexed.
        terms.push((s, ("_id", None, s.id.clone())));
    }
    for chunk in terms.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO search_index (resource_type, id, name, system, value) ",
        );
        q.push_values(chunk, |mut b, (s, (name, system, value))| {
            b.push_bind(&s.resource_type)
                .push_bind(&s.id)
                .push_bind(*name)
                .push_bind(system.as_deref())
                .push_bind(value.as_str());
        });
        q.build().persistent(false).execute(&mut *tx).await?;
    }
    Ok(())
}

/// Replaces the search terms of `s` (for [`Store::index_missing`]).
async fn index(tx: &mut SqliteConnection, s: &Stored) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM search_index WHERE resource_type = ? AND id = ?")
        .bind(&s.resource_type)
        .bind(&s.id)
        .execute(&mut *tx)
        .await?;
    let mut terms = search::terms(&s.resource_type, &s.resource);
    // Every resource has at least this row, so `index_missing` can tell it was indexed.
    terms.push(("_id", None, s.id.clone()));
    let mut q = QueryBuilder::<Sqlite>::new(
        "INSERT INTO search_index (resource_type, id, name, system, value) ",
    );
    q.push_values(terms, |mut b, (name, system, value)| {
        b.push_bind(&s.resource_type)
            .push_bind(&s.id)
            .push_bind(name)
            .push_bind(system)
            .push_bind(value);
    });
    q.build().execute(&mut *tx).await?;
    Ok(())
}

/// Past every string that starts with a prefix.
const HIGH: char = '\u{10FFFF}';

async fn search_in(
    conn: &mut SqliteConnection,
    resource_type: &str,
    query: &Query,
) -> Result<(Vec<Stored>, usize), sqlx::Error> {
    // QueryBuilder cannot be cloned with its arguments: build the count and the page
    // from the same conditions twice.
    let mut count_q = QueryBuilder::<Sqlite>::new("SELECT COUNT(*)");
    let mut page_q = QueryBuilder::<Sqlite>::new(
        "SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.body",
    );
    for q in [&mut count_q, &mut page_q] {
        q.push(" FROM resource r WHERE r.resource_type = ")
            .push_bind(resource_type.to_owned());
        for condition in &query.conditions {
            push_condition(q, resource_type, condition);
        }
    }
    let total: i64 = count_q.build_query_scalar().fetch_one(&mut *conn).await?;
    let total = usize::try_from(total).unwrap_or(0);
    if query.total_only() {
        return Ok((Vec::new(), total));
    }
    page_q.push(" ORDER BY ");
    for (key, descending) in &query.sort {
        let direction = if *descending { "DESC" } else { "ASC" };
        match key {
            SortKey::LastUpdated => {
                page_q.push(format!("r.last_updated {direction}, "));
            }
            // A resource with several values sorts by its first going up, its
            // last going down; one without any sorts first going up.
            SortKey::Parameter(name) => {
                let pick = if *descending { "MAX" } else { "MIN" };
                page_q
                    .push(format!(
                        "(SELECT {pick}(s.value) FROM search_index s
                          WHERE s.resource_type = r.resource_type AND s.id = r.id AND s.name = "
                    ))
                    .push_bind(name.clone())
                    .push(format!(") {direction}, "));
            }
        }
    }
    page_q
        .push("r.rowid LIMIT ")
        .push_bind(i64::try_from(query.count).unwrap_or(i64::MAX))
        .push(" OFFSET ")
        .push_bind(i64::try_from(query.offset).unwrap_or(0));
    let rows: Vec<(String, String, i64, String, String)> =
        page_q.build_query_as().fetch_all(&mut *conn).await?;
    Ok((rows.into_iter().filter_map(row_to_stored).collect(), total))
}

fn push_condition(q: &mut QueryBuilder<'_, Sqlite>, resource_type: &str, condition: &Condition) {
    let sub = |q: &mut QueryBuilder<'_, Sqlite>, name: &str| {
        q.push(" AND r.id IN (SELECT id FROM search_index WHERE resource_type = ")
            .push_bind(resource_type.to_owned())
            .push(" AND name = ")
            .push_bind(name.to_owned())
            .push(" AND (");
    };
    match condition {
        Condition::Id { ids, not } => {
            q.push(if *not {
                " AND r.id NOT IN ("
            } else {
                " AND r.id IN ("
            });
            let mut list = q.separated(", ");
            for id in ids {
                list.push_bind(id.clone());
            }
            q.push(")");
        }
        Condition::LastUpdated(prefix, instant) => {
            q.push(" AND (");
            push_date(q, "r.last_updated", *prefix, instant);
            q.push(")");
        }
        Condition::String { name, values, how } => {
            sub(q, name);
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    q.push(" OR ");
                }
                if *how == StringMatch::Exact {
                    q.push("value = ").push_bind(v.clone());
                } else if *how == StringMatch::Contains {
                    q.push("instr(value, ").push_bind(v.clone()).push(") > 0");
                } else {
                    q.push("(value >= ")
                        .push_bind(v.clone())
                        .push(" AND value < ")
                        .push_bind(format!("{v}{HIGH}"))
                        .push(")");
                }
            }
            q.push("))");
        }
        Condition::Token { name, values, not } => {
            if *not {
                // The resources with none of these values, those without any included.
                q.push(" AND r.id NOT IN (SELECT id FROM search_index WHERE resource_type = ")
                    .push_bind(resource_type.to_owned())
                    .push(" AND name = ")
                    .push_bind(name.to_owned())
                    .push(" AND (");
            } else {
                sub(q, name);
            }
            for (i, (system, value)) in values.iter().enumerate() {
                if i > 0 {
                    q.push(" OR ");
                }
                q.push("(value = ").push_bind(value.clone());
                match system.as_deref() {
                    None => {}
                    Some("") => {
                        q.push(" AND system IS NULL");
                    }
                    Some(s) => {
                        q.push(" AND system = ").push_bind(s.to_owned());
                    }
                }
                q.push(")");
            }
            q.push("))");
        }
        Condition::Date { name, values } => {
            sub(q, name);
            for (i, (prefix, d)) in values.iter().enumerate() {
                if i > 0 {
                    q.push(" OR ");
                }
                push_date(q, "value", *prefix, d);
            }
            q.push("))");
        }
        Condition::Missing { name, missing } => {
            q.push(if *missing {
                " AND r.id NOT IN (SELECT id FROM search_index WHERE resource_type = "
            } else {
                " AND r.id IN (SELECT id FROM search_index WHERE resource_type = "
            })
            .push_bind(resource_type.to_owned())
            .push(" AND name = ")
            .push_bind(name.to_owned())
            .push(")");
        }
        Condition::Exact { name, values } => {
            sub(q, name);
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    q.push(" OR ");
                }
                q.push("value = ").push_bind(v.clone());
            }
            q.push("))");
        }
    }
}

/// A date or instant column against a value of some precision: `eq 1980-03` is
/// every day of March 1980.
fn push_date(q: &mut QueryBuilder<'_, Sqlite>, column: &str, prefix: Prefix, d: &str) {
    let end = format!("{d}{HIGH}");
    match prefix {
        Prefix::Eq => q
            .push(format!("({column} >= "))
            .push_bind(d.to_owned())
            .push(format!(" AND {column} < "))
            .push_bind(end)
            .push(")"),
        Prefix::Ne => q
            .push(format!("NOT ({column} >= "))
            .push_bind(d.to_owned())
            .push(format!(" AND {column} < "))
            .push_bind(end)
            .push(")"),
        Prefix::Ge => q.push(format!("{column} >= ")).push_bind(d.to_owned()),
        Prefix::Lt => q.push(format!("{column} < ")).push_bind(d.to_owned()),
        Prefix::Le => q.push(format!("{column} < ")).push_bind(end),
        Prefix::Gt => q.push(format!("{column} >= ")).push_bind(end),
    };
}
