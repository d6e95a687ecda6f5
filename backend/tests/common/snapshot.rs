//! JSON snapshots under `tests/snapshots/{dir}/`, compared as pretty-printed text: a
//! missing or different snapshot fails, printing what was found; `UPDATE_SNAPSHOTS=1` (re)writes them all (review the diff before
//! committing).

use std::path::PathBuf;

use serde_json::Value;

/// Compares `actual` with `tests/snapshots/{dir}/{name}.json`.
pub(crate) fn assert_snapshot(dir: &str, name: &str, actual: &Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(dir)
        .join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(actual).expect("JSON") + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("snapshot folder");
        std::fs::write(&path, text).expect("writes the snapshot");
        return;
    }
    // A missing snapshot fails: written on the quiet, it would check nothing.
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{name}: no snapshot at {} (UPDATE_SNAPSHOTS=1 writes it):\n{text}",
            path.display()
        )
    });
    assert!(
        expected == text,
        "{name}: differs from {} (UPDATE_SNAPSHOTS=1 to accept):\n{text}",
        path.display()
    );
}

/// `value` with every occurrence of each `(volatile, placeholder)` pair's first
/// string replaced by its second (in strings and object keys), and the values of
/// `redacted` keys (at any depth) replaced by `[key]`.
pub(crate) fn normalise(value: &Value, volatile: &[(String, String)], redacted: &[&str]) -> Value {
    let text = |s: &str| {
        volatile
            .iter()
            .fold(s.to_owned(), |s, (from, to)| s.replace(from.as_str(), to))
    };
    match value {
        Value::String(s) => Value::String(text(s)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| normalise(v, volatile, redacted))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if redacted.contains(&k.as_str()) {
                        Value::String(format!("[{k}]"))
                    } else {
                        normalise(v, volatile, redacted)
                    };
                    (text(k), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}
