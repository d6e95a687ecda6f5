//! Shared by the backend's integration tests: the fixtures, the server spawned on
//! loopback, a generator of valid responses, and the external FHIR R4 validator.

// Each test binary uses its own part of this module.
#![allow(dead_code)]
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub(crate) mod fhir_validator;
mod fixture_files;
pub(crate) mod http;
pub(crate) mod intake_process;
pub(crate) mod intake_server;
pub(crate) mod medplum;
pub(crate) mod registration;
pub(crate) mod snapshot;

use std::path::Path;

use serde_json::Value;

/// The server, spawned by [`spawn_server`].
#[derive(Debug)]
pub(crate) struct Spawned {
    /// `http://127.0.0.1:{port}`.
    pub(crate) base: String,
    /// Sending on it stops the server as SIGTERM would.
    pub(crate) stop: tokio::sync::oneshot::Sender<()>,
    /// The server's task: what it ended with.
    pub(crate) server: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// A client sending an admin token: since issue 6, `/fhir` and most of `/api`
    /// need one. (The patient's own flow does not; tests of it may use any client.)
    pub(crate) client: reqwest::Client,
}

/// A client that sends `Authorization: Bearer {token}` with every request.
pub(crate) fn authorized(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    value.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// A new admin token on the app's database, allowed to link intakes to charts:
/// these tests' client stands for the EMR's own integration, whose intakes prove
/// who the patient is (issue 21; an anonymous intake only proposes a link).
pub(crate) async fn admin_token(db: &sqlx::SqlitePool, name: &str) -> String {
    backend::auth::tokens::create_linking(
        db,
        std::time::SystemTime::now(),
        name,
        backend::auth::Role::Admin,
    )
    .await
    .unwrap()
}

/// The real app on 127.0.0.1:0 over the folders `data` and `dist`, with a 16 KiB
/// body limit.
pub(crate) async fn spawn_server(data: &Path, dist: &Path) -> Spawned {
    spawn_server_with(data, dist, |_| {}).await
}

/// [`spawn_server`] with its settings changed by `configure` first.
pub(crate) async fn spawn_server_with(
    data: &Path,
    dist: &Path,
    configure: impl FnOnce(&mut backend::Config),
) -> Spawned {
    let mut config = backend::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data: data.to_owned(),
        dist: dist.to_owned(),
        max_body_bytes: 16 * 1024,
        matching: Default::default(),
        delivery: Default::default(),
        emr: Default::default(),
        guard: Default::default(),
        public_url: None,
    };
    configure(&mut config);
    let app = backend::Application::build(&config).await.unwrap();
    let base = format!("http://{}", app.local_addr().unwrap());
    // A fresh name per start: a test may start twice over one data folder.
    let name = format!(
        "tests-{}",
        backend::fhir::extract::IdGenerator::uuid(&backend::fhir::extract::RandomIds)
    );
    let client = authorized(&admin_token(app.db(), &name).await);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Spawned {
        base,
        stop,
        server,
        client,
    }
}

/// The team's real-world Questionnaires: (file stem with `-` for `_`, JSON).
pub(crate) fn fixtures() -> Vec<(String, String)> {
    fixture_files::questionnaire_fixtures()
        .into_iter()
        .map(|(stem, json)| (stem.replace('_', "-"), json))
        .collect()
}

/// The id to store a fixture under: its own, or one made from its file name.
pub(crate) fn fixture_id(name: &str, json: &str) -> String {
    let value: Value = serde_json::from_str(json).unwrap();
    value["id"]
        .as_str()
        .map_or_else(|| name.chars().take(64).collect(), str::to_owned)
}

/// A response that answers every question of `form` with a value its rules
/// accept; the caller prunes answers that enableWhen rules out.
pub(crate) fn answer_everything(
    items: &[shared::form::Item],
) -> Vec<shared::response::ResponseItem> {
    use shared::form::{Attachment, ItemKind as K, Quantity, Value as V};
    use shared::response::{ResponseAnswer, ResponseItem};
    let value_for = |item: &shared::form::Item| -> Option<V> {
        let c = &item.constraints;
        let number = |default: f64| {
            let min = c.min_value.as_ref().and_then(|v| match v {
                V::Integer(i) => Some(*i as f64),
                V::Decimal(d) => Some(*d),
                _ => None,
            });
            min.unwrap_or(default)
        };
        // A calculated item is the form's to fill in, not the patient's: left out
        // (the server checks one that is sent against its calculation).
        if item.expressions.calculated.is_some() {
            return None;
        }
        Some(match item.kind {
            K::Group | K::Display => return None,
            K::Boolean => V::Boolean(true),
            K::Decimal => V::Decimal(number(1.0)),
            K::Integer => V::Integer(number(1.0) as i64),
            K::Date => c
                .min_value
                .clone()
                .filter(|v| matches!(v, V::Date(_)))
                .unwrap_or(V::Date("2000-01-01".into())),
            K::DateTime => V::DateTime("2000-01-01T10:00:00Z".into()),
            K::Time => V::Time("10:00:00".into()),
            K::Url => V::Uri("https://example.org".into()),
            K::Reference => V::Reference("Patient/example".into()),
            K::Quantity => V::Quantity(Quantity {
                value: Some(1.0),
                unit: Some("kg".into()),
                ..Quantity::default()
            }),
            K::Attachment => V::Attachment(Attachment {
                content_type: c.mime_types.first().cloned().or(Some("text/plain".into())),
                data: Some("aGVsbG8=".into()),
                title: Some("card".into()),
                ..Attachment::default()
            }),
            K::Choice | K::OpenChoice => match (item.initial.first(), item.options.first()) {
                (Some(initial), _) => initial.clone(),
                (None, Some(option)) => option.value.clone(),
                (None, None) if item.unresolved_value_set.is_some() => V::String("other".into()),
                (None, None) => V::Coding(shared::form::Coding {
                    code: Some("other".into()),
                    ..shared::form::Coding::default()
                }),
            },
            K::String | K::Text => {
                let candidates = [
                    "Jane",
                    "2000",
                    "1234",
                    "A1",
                    "jane@example.org",
                    "0412 345 678",
                    "abc",
                ];
                let fits = |text: &str| {
                    c.regex
                        .as_ref()
                        .is_none_or(|r| regex_lite::Regex::new(r).is_ok_and(|re| re.is_match(text)))
                };
                let text = candidates
                    .iter()
                    .find(|t| fits(t))
                    .copied()
                    .unwrap_or("Jane");
                let min = c.min_length.unwrap_or(0) as usize;
                let max = c.max_length.map_or(usize::MAX, |m| m as usize);
                let text = format!("{text}{}", "x".repeat(min.saturating_sub(text.len())));
                V::String(text.chars().take(max).collect())
            }
        })
    };
    items
        .iter()
        .filter_map(|item| {
            if item.kind == shared::form::ItemKind::Display {
                return None;
            }
            let children = answer_everything(&item.items);
            let (answer, item_children) = match value_for(item) {
                Some(value) => (
                    vec![ResponseAnswer {
                        value,
                        item: children,
                    }],
                    vec![],
                ),
                None => (vec![], children),
            };
            Some(ResponseItem {
                link_id: item.link_id.clone(),
                text: None,
                answer,
                item: item_children,
            })
        })
        .collect()
}

/// Removes every answer to `link_id`, wherever it is.
pub(crate) fn remove_answers(items: &mut Vec<shared::response::ResponseItem>, link_id: &str) {
    items.retain(|i| i.link_id != link_id);
    for item in items {
        remove_answers(&mut item.item, link_id);
        for answer in &mut item.answer {
            remove_answers(&mut answer.item, link_id);
        }
    }
}

/// A valid response for `form`: everything answered, then the answers that
/// enableWhen rules out removed (one pass can disable another, so repeat).
pub(crate) fn valid_response(form: &shared::form::Form) -> shared::response::QuestionnaireResponse {
    let mut response = shared::response::QuestionnaireResponse::new(
        Some(format!("Questionnaire/{}", form.id)),
        "completed",
        answer_everything(&form.items),
    );
    for _ in 0..10 {
        let disabled: Vec<String> = shared::answers::validate(form, &response)
            .into_iter()
            .filter(|i| i.problem == shared::answers::AnswerProblem::NotEnabled)
            .map(|i| i.link_id)
            .collect();
        if disabled.is_empty() {
            break;
        }
        for link_id in disabled {
            remove_answers(&mut response.item, &link_id);
        }
    }
    response
}
