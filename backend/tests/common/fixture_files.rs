//! The team's real-world Questionnaires (`shared/fixtures/questionnaires` beside
//! the workspace), read the same way by every test harness: the backend's
//! integration tests through `common`, and the backend's unit tests and the
//! end-to-end crate by including this file with `#[path]`, since the one crate they
//! all depend on, `shared`, does no I/O. `CARGO_MANIFEST_DIR` is the including
//! crate's: each sits one folder below the workspace.

use std::path::Path;

/// Every fixture as (file stem, JSON), sorted by file name.
pub(crate) fn questionnaire_fixtures() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/questionnaires");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let json =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (stem, json)
        })
        .collect()
}
