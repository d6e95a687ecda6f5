//! Questionnaires in the embedded store: saved with their compiled form, read back.

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
    mut resource: serde_json::Value,
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
        Err(SaveError::Invalid(issues)) => {
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

/// Every Questionnaire whose canonical URL is `url` (any version).
pub async fn search_by_url(db: &SqlitePool, url: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT body FROM resource WHERE resource_type = 'Questionnaire' AND url = ? ORDER BY id",
    )
    .bind(url)
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
