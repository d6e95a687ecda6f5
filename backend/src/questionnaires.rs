//! Questionnaires in the embedded store: saved with their compiled form, read back,
//! and kept parsed in memory ([`FormCache`]) for the requests that check answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use shared::form::CompiledForm;
use sqlx::SqlitePool;

use crate::clock::{Clock, fhir_instant};
use crate::fhir::outcome::{Issue, IssueType};
use crate::fhir::questionnaire;
use shared::form::ImportWarning;

/// What saving a Questionnaire did.
#[derive(Debug)]
pub struct Saved {
    /// The stored resource, as FHIR JSON, with `id` and `meta` set.
    pub body: String,
    /// Its new version.
    pub version_id: i64,
    /// Whether it did not exist before.
    pub created: bool,
    /// What the compiled form could not use.
    pub warnings: Vec<ImportWarning>,
}

/// Why a Questionnaire was not saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// The resource cannot be used; nothing was stored.
    #[error("invalid Questionnaire")]
    Invalid(Vec<Issue>),
    /// `If-Match` named another version than the current one; nothing was stored.
    #[error("precondition failed")]
    PreconditionFailed(Vec<Issue>),
    /// The database failed; nothing was stored.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Whether `id` is a valid FHIR id: 1-64 of `A-Z a-z 0-9 - .`.
pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Compiles and stores `resource` as `Questionnaire/{id}`, as a new version if it
/// exists. The resource's own `id`, if any, must be `id`. All or nothing.
pub async fn save(
    db: &SqlitePool,
    clock: &dyn Clock,
    id: &str,
    resource: serde_json::Value,
) -> Result<Saved, SaveError> {
    save_if(db, clock, id, resource, None).await
}

/// [`save`], only if the current version is `if_match` (when given): the
/// version a client read before it changed the form (`If-Match`). Checked in the
/// write transaction, so two editors cannot both win.
pub async fn save_if(
    db: &SqlitePool,
    clock: &dyn Clock,
    id: &str,
    mut resource: serde_json::Value,
    if_match: Option<i64>,
) -> Result<Saved, SaveError> {
    if !is_valid_id(id) {
        return Err(SaveError::Invalid(vec![
            Issue::error(
                IssueType::Value,
                "The id must be 1 to 64 letters, digits, '-' or '.'",
            )
            .at("id"),
        ]));
    }
    match resource.get("id").and_then(serde_json::Value::as_str) {
        Some(own) if own != id => {
            return Err(SaveError::Invalid(vec![
                Issue::error(
                    IssueType::Invalid,
                    "The resource's id differs from the id in the URL",
                )
                .at("id"),
            ]));
        }
        _ => {}
    }
    let parsed = questionnaire::parse_value(resource.clone())
        .map_err(|issue| SaveError::Invalid(vec![issue]))?;
    let compiled = questionnaire::compile(&parsed, id).map_err(SaveError::Invalid)?;
    let url = compiled.form.url.clone();
    let compiled_json = serde_json::to_string(&compiled).map_err(|e| {
        SaveError::Invalid(vec![Issue::error(
            IssueType::Exception,
            format!("The form could not be stored: {e}"),
        )])
    })?;

    let mut tx = crate::db::begin_write(db).await?;
    let current: Option<(i64, String)> = sqlx::query_as(
        "SELECT version_id, body FROM resource WHERE resource_type = 'Questionnaire' AND id = ?",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(expected) = if_match
        && current.as_ref().map(|(v, _)| *v) != Some(expected)
    {
        return Err(SaveError::PreconditionFailed(vec![
            Issue::error(
                IssueType::Conflict,
                "The Questionnaire has changed since that version was read: read it again",
            )
            .at("If-Match"),
        ]));
    }
    resource["id"] = id.into();
    if let Some((version_id, body)) = &current
        && same_content(body, &resource)
    {
        // An identical update is not a new version (as FHIR servers do).
        return Ok(Saved {
            body: body.clone(),
            version_id: *version_id,
            created: false,
            warnings: compiled.warnings,
        });
    }
    let version_id = current.as_ref().map_or(0, |(v, _)| *v) + 1;
    let last_updated = fhir_instant(clock.now());
    resource["meta"]["versionId"] = version_id.to_string().into();
    resource["meta"]["lastUpdated"] = last_updated.clone().into();
    let body = resource.to_string();
    sqlx::query(
        "INSERT INTO resource (resource_type, id, version_id, last_updated, url, body)
         VALUES ('Questionnaire', ?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (resource_type, id) DO UPDATE SET
           version_id = excluded.version_id, last_updated = excluded.last_updated,
           url = excluded.url, body = excluded.body",
    )
    .bind(id)
    .bind(version_id)
    .bind(&last_updated)
    .bind(&url)
    .bind(&body)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO resource_version (resource_type, id, version_id, last_updated, body)
         VALUES ('Questionnaire', ?1, ?2, ?3, ?4)",
    )
    .bind(id)
    .bind(version_id)
    .bind(&last_updated)
    .bind(&body)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO compiled_form (questionnaire_id, version_id, body) VALUES (?1, ?2, ?3)
         ON CONFLICT (questionnaire_id) DO UPDATE SET version_id = excluded.version_id, body = excluded.body",
    )
    .bind(id)
    .bind(version_id)
    .bind(&compiled_json)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    // After the commit: a cache that reads the new version before this is only
    // dropped; one that read the old version cannot outlive the bump.
    SAVES.fetch_add(1, Ordering::Release);
    Ok(Saved {
        body,
        version_id,
        created: current.is_none(),
        warnings: compiled.warnings,
    })
}

/// Whether the stored `body` and `resource` differ only in `meta`.
fn same_content(body: &str, resource: &serde_json::Value) -> bool {
    let strip = |mut v: serde_json::Value| {
        if let Some(fields) = v.as_object_mut() {
            fields.remove("meta");
        }
        v
    };
    serde_json::from_str::<serde_json::Value>(body)
        .is_ok_and(|stored| strip(stored) == strip(resource.clone()))
}

/// The id of the registration form the app shows at `/intake` and on the kiosk.
pub const REGISTRATION_ID: &str = "registration";

/// Intake's own registration form (who the patient is, extracted to a Patient by
/// definition), with Spanish translations.
const REGISTRATION: &str = include_str!("../forms/registration.json");

/// Stores the built-in registration form as `Questionnaire/registration` when
/// there is none, or when the stored one is an older version of ours. A clinic's
/// own form under that id (any other canonical URL) is never replaced.
pub async fn ensure_registration(db: &SqlitePool, clock: &dyn Clock) -> anyhow::Result<()> {
    let builtin: serde_json::Value = serde_json::from_str(REGISTRATION)?;
    let field = |resource: &serde_json::Value, name: &str| {
        resource
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    if let Some((body, _)) = read(db, REGISTRATION_ID).await? {
        let stored: serde_json::Value = serde_json::from_str(&body)?;
        let ours = field(&stored, "url") == field(&builtin, "url");
        if !ours || field(&stored, "version") == field(&builtin, "version") {
            return Ok(());
        }
    }
    match save(db, clock, REGISTRATION_ID, builtin).await {
        Ok(_) => Ok(()),
        Err(SaveError::Invalid(issues) | SaveError::PreconditionFailed(issues)) => {
            anyhow::bail!("the built-in registration form does not import: {issues:?}")
        }
        Err(SaveError::Database(error)) => Err(error.into()),
    }
}

/// The stored Questionnaire and its version.
pub async fn read(db: &SqlitePool, id: &str) -> Result<Option<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT body, version_id FROM resource WHERE resource_type = 'Questionnaire' AND id = ?",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Counts the new versions [`save`] has stored in this process: a [`FormCache`]
/// entry read under an older count is stale.
static SAVES: AtomicU64 = AtomicU64::new(0);

/// How long a cached form is used without asking the database whether it is still
/// the current version. Saves in this process invalidate at once; this bounds how
/// long a form imported by another process (`intake import`) goes unseen.
const CHECK_AFTER: Duration = Duration::from_secs(1);

/// A stored Questionnaire, parsed, with its compiled form.
#[derive(Debug)]
pub struct CachedForm {
    /// The Questionnaire's id.
    pub id: String,
    /// The version these are of.
    pub version_id: i64,
    /// The Questionnaire as stored (FHIR JSON): what extraction reads.
    pub questionnaire: serde_json::Value,
    /// Its compiled form: what validation reads.
    pub compiled: CompiledForm,
}

/// A cache entry: what was read, under which save count, and when it was last
/// found current.
#[derive(Debug, Clone)]
struct Entry<T> {
    value: T,
    saves: u64,
    checked: Instant,
}

/// Parsed Questionnaires and compiled forms by id, and ids by canonical URL.
/// Every submission needs its form: reading and parsing it for each one was most
/// of a submission's work. Only forms that exist are kept (a request naming an
/// unknown one adds nothing), so it holds at most one entry per stored form.
#[derive(Debug)]
pub struct FormCache {
    forms: RwLock<HashMap<String, Entry<Arc<CachedForm>>>>,
    urls: RwLock<HashMap<String, Entry<String>>>,
    check_after: Duration,
}

impl Default for FormCache {
    fn default() -> Self {
        Self::checking_after(CHECK_AFTER)
    }
}

impl FormCache {
    /// A cache that asks the database again once an entry is `check_after` old.
    fn checking_after(check_after: Duration) -> Self {
        Self {
            forms: RwLock::default(),
            urls: RwLock::default(),
            check_after,
        }
    }

    /// `Questionnaire/{id}` and its compiled form, if stored (and both readable).
    pub async fn form(
        &self,
        db: &SqlitePool,
        id: &str,
    ) -> Result<Option<Arc<CachedForm>>, sqlx::Error> {
        // Read the count before the database: a save committed after this read
        // makes the entry stale even if the read below saw the old version.
        let saves = SAVES.load(Ordering::Acquire);
        let cached = read_lock(&self.forms).get(id).cloned();
        if let Some(entry) = &cached
            && entry.saves == saves
        {
            if entry.checked.elapsed() < self.check_after {
                return Ok(Some(entry.value.clone()));
            }
            let current: Option<i64> = sqlx::query_scalar(
                "SELECT version_id FROM resource WHERE resource_type = 'Questionnaire' AND id = ?",
            )
            .bind(id)
            .fetch_optional(db)
            .await?;
            if current == Some(entry.value.version_id) {
                self.keep_form(id, entry.value.clone(), saves);
                return Ok(Some(entry.value.clone()));
            }
        }
        // The resource and its compiled form in one read, so both are of one version.
        let row: Option<(String, i64, String, i64)> = sqlx::query_as(
            "SELECT r.body, r.version_id, c.body, c.version_id FROM resource r
             JOIN compiled_form c ON c.questionnaire_id = r.id
             WHERE r.resource_type = 'Questionnaire' AND r.id = ?",
        )
        .bind(id)
        .fetch_optional(db)
        .await?;
        let Some((body, version_id, compiled, compiled_version)) = row else {
            write_lock(&self.forms).remove(id);
            return Ok(None);
        };
        let (Ok(questionnaire), Ok(compiled)) = (
            serde_json::from_str::<serde_json::Value>(&body),
            serde_json::from_str::<CompiledForm>(&compiled),
        ) else {
            return Ok(None);
        };
        let form = Arc::new(CachedForm {
            id: id.to_owned(),
            version_id,
            questionnaire,
            compiled,
        });
        if compiled_version == version_id {
            self.keep_form(id, form.clone(), saves);
        }
        Ok(Some(form))
    }

    fn keep_form(&self, id: &str, form: Arc<CachedForm>, saves: u64) {
        write_lock(&self.forms).insert(
            id.to_owned(),
            Entry {
                value: form,
                saves,
                checked: Instant::now(),
            },
        );
    }

    /// The id of the first (by id) Questionnaire whose canonical URL is `url`, as
    /// [`search_by_url`] orders them.
    pub async fn id_by_url(
        &self,
        db: &SqlitePool,
        url: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        let saves = SAVES.load(Ordering::Acquire);
        if let Some(entry) = read_lock(&self.urls).get(url)
            && entry.saves == saves
            && entry.checked.elapsed() < self.check_after
        {
            return Ok(Some(entry.value.clone()));
        }
        let id: Option<String> = sqlx::query_scalar(
            "SELECT id FROM resource WHERE resource_type = 'Questionnaire' AND url = ?
             ORDER BY id LIMIT 1",
        )
        .bind(url)
        .fetch_optional(db)
        .await?;
        let mut urls = write_lock(&self.urls);
        match &id {
            Some(id) => {
                urls.insert(
                    url.to_owned(),
                    Entry {
                        value: id.clone(),
                        saves,
                        checked: Instant::now(),
                    },
                );
            }
            None => {
                urls.remove(url);
            }
        }
        Ok(id)
    }
}

fn read_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// Every Questionnaire whose canonical URL is `url` (any version).
pub async fn search_by_url(db: &SqlitePool, url: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT body FROM resource WHERE resource_type = 'Questionnaire' AND url = ? ORDER BY id",
    )
    .bind(url)
    .fetch_all(db)
    .await
}

/// Every stored Questionnaire that is not retired: its id and title (else its
/// name, else its id), by title.
pub async fn titles(db: &SqlitePool) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, COALESCE(NULLIF(TRIM(json_extract(body, '$.title')), ''),
                             NULLIF(TRIM(json_extract(body, '$.name')), ''), id) AS title
         FROM resource
         WHERE resource_type = 'Questionnaire'
           AND COALESCE(json_extract(body, '$.status'), '') != 'retired'
         ORDER BY title COLLATE NOCASE, id",
    )
    .fetch_all(db)
    .await
}

/// The compiled form of `Questionnaire/{id}`, as JSON.
pub async fn compiled_form(db: &SqlitePool, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT body FROM compiled_form WHERE questionnaire_id = ?")
        .bind(id)
        .fetch_optional(db)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Intake's own registration form uses nothing the renderer lacks, and has
    /// Spanish for everything it says.
    #[test]
    fn the_registration_form_compiles_without_warnings_in_two_languages() {
        let parsed = questionnaire::parse(REGISTRATION).unwrap();
        let compiled = questionnaire::compile(&parsed, REGISTRATION_ID).unwrap();
        assert_eq!(compiled.warnings, vec![]);
        assert_eq!(compiled.form.languages(), ["es"]);
        let spanish = compiled.form.localized("es");
        fn texts(items: &[shared::form::Item], out: &mut Vec<String>) {
            for item in items {
                out.push(item.text.clone());
                out.extend(item.help.clone());
                out.extend(item.entry_format.clone());
                out.extend(item.options.iter().map(|o| format!("{:?}", o.label)));
                texts(&item.items, out);
            }
        }
        let (mut en, mut es) = (Vec::new(), Vec::new());
        texts(&compiled.form.items, &mut en);
        texts(&spanish.items, &mut es);
        assert_eq!(en.len(), es.len());
        for (en, es) in en.iter().zip(&es) {
            // Phone numbers look the same in both languages.
            if en != "(617) 555-0100" {
                assert_ne!(en, es, "not translated");
            }
        }
        assert_ne!(compiled.form.title, spanish.title);
    }

    fn form(url: &str, text: &str) -> serde_json::Value {
        serde_json::json!({
            "resourceType": "Questionnaire", "url": url, "status": "active",
            "item": [{"linkId": "q", "type": "string", "text": text}],
        })
    }

    fn text_of(form: &CachedForm) -> &str {
        form.questionnaire["item"][0]["text"]
            .as_str()
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn the_form_cache_serves_a_saved_version_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(dir.path()).await.unwrap();
        let clock = crate::clock::SystemClock;
        let cache = FormCache::default();
        let url = "http://example.org/Questionnaire/cached";
        save(&db, &clock, "cached", form(url, "First"))
            .await
            .unwrap();
        let first = cache.form(&db, "cached").await.unwrap().unwrap();
        assert_eq!((first.version_id, text_of(&first)), (1, "First"));
        assert_eq!(
            cache.id_by_url(&db, url).await.unwrap().as_deref(),
            Some("cached")
        );
        save(&db, &clock, "cached", form(url, "Second"))
            .await
            .unwrap();
        let second = cache.form(&db, "cached").await.unwrap().unwrap();
        assert_eq!((second.version_id, text_of(&second)), (2, "Second"));
        assert_eq!(second.compiled.form.items[0].text, "Second");
        assert!(cache.form(&db, "unknown").await.unwrap().is_none());
        assert!(
            cache
                .id_by_url(&db, "http://example.org/none")
                .await
                .unwrap()
                .is_none()
        );
    }

    /// Another process (`intake import`) saves without this process knowing: the
    /// cache finds out when it next asks the database for the version.
    #[tokio::test]
    async fn the_form_cache_finds_a_version_saved_elsewhere_when_it_checks_again() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(dir.path()).await.unwrap();
        let clock = crate::clock::SystemClock;
        let url = "http://example.org/Questionnaire/elsewhere";
        save(&db, &clock, "elsewhere", form(url, "First"))
            .await
            .unwrap();
        let elsewhere = || async {
            let compiled = questionnaire::compile(
                &questionnaire::parse_value(form(url, "Second")).unwrap(),
                "elsewhere",
            )
            .unwrap();
            let mut body = form(url, "Second");
            body["id"] = "elsewhere".into();
            sqlx::query("UPDATE resource SET version_id = 2, body = ? WHERE id = 'elsewhere'")
                .bind(body.to_string())
                .execute(&db)
                .await
                .unwrap();
            sqlx::query("UPDATE compiled_form SET version_id = 2, body = ? WHERE questionnaire_id = 'elsewhere'")
                .bind(serde_json::to_string(&compiled).unwrap())
                .execute(&db)
                .await
                .unwrap();
        };
        // An hour, not the default second: a loaded machine may take a second
        // between two statements.
        let patient = FormCache::checking_after(Duration::from_secs(3600));
        let eager = FormCache::checking_after(Duration::ZERO);
        for cache in [&patient, &eager] {
            assert_eq!(
                cache
                    .form(&db, "elsewhere")
                    .await
                    .unwrap()
                    .unwrap()
                    .version_id,
                1
            );
        }
        let saves = SAVES.load(Ordering::Acquire);
        elsewhere().await;
        // Within the interval: the version read a moment ago. (Unless another test
        // in this process saved a form meanwhile: `SAVES` is process-wide, and
        // then every cache rightly checks again.)
        let seen = patient
            .form(&db, "elsewhere")
            .await
            .unwrap()
            .unwrap()
            .version_id;
        if SAVES.load(Ordering::Acquire) == saves {
            assert_eq!(seen, 1);
        }
        let seen = eager.form(&db, "elsewhere").await.unwrap().unwrap();
        assert_eq!((seen.version_id, text_of(&seen)), (2, "Second"));
    }

    #[test]
    fn fhir_ids_are_checked() {
        for ok in ["phq9", "a", "Q-1.2", &"x".repeat(64)] {
            assert!(is_valid_id(ok), "{ok}");
        }
        for bad in ["", "a b", "a/b", "é", "a_b", &"x".repeat(65)] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }
}
