//! JSON over HTTP: a GET that must answer 200, and the resources a FHIR search finds,
//! against our server's `/fhir` and an EMR's base alike.

use reqwest::StatusCode;
use serde_json::Value;

/// `GET url`, which must answer 200: its JSON.
pub(crate) async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    let r = client.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{url}");
    r.json().await.unwrap()
}

/// The resources in a Bundle's entries (none when it has no `entry`).
pub(crate) fn resources(bundle: &Value) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e["resource"].clone())
        .collect()
}

/// The resources a search at the FHIR base `base` finds (its first page).
pub(crate) async fn search(client: &reqwest::Client, base: &str, query: &str) -> Vec<Value> {
    resources(&get_json(client, &format!("{base}/{query}")).await)
}
