//! Bundles the server answers with.

/// A `searchset` Bundle of stored resources (FHIR JSON each), every entry a match.
/// `base` is the server's FHIR base URL, for each entry's `fullUrl`.
pub fn searchset(base: &str, resource_type: &str, resources: &[String]) -> Vec<u8> {
    let entries: Vec<serde_json::Value> = resources
        .iter()
        .filter_map(|body| serde_json::from_str::<serde_json::Value>(body).ok())
        .map(|resource| {
            let id = resource
                .get("id")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned();
            serde_json::json!({
                "fullUrl": format!("{base}/{resource_type}/{id}"),
                "resource": resource,
                "search": {"mode": "match"}
            })
        })
        .collect();
    let bundle = serde_json::json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "entry": entries,
    });
    serde_json::to_vec(&bundle).unwrap_or_default()
}
