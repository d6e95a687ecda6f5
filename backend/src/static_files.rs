//! The built web apps (Trunk's `dist/`): precompressed files, cache headers that
//! match how each file is named, and the page for each app's own routes:
//! `staff/index.html` (the staff app, built into `dist/staff/`) for `/staff` and
//! `/staff/…`, `kiosk/index.html` (the kiosk app) for `/kiosk`, `index.html` (the
//! patient app) for the others.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt as _;
use tower_http::services::{ServeDir, ServeFile};

/// The services that read `dist/`.
#[derive(Clone, Debug)]
pub struct StaticFiles {
    dir: ServeDir,
    index: ServeFile,
    staff_index: ServeFile,
    kiosk_index: ServeFile,
    index_path: PathBuf,
}

impl StaticFiles {
    /// Serves `dist`. Brotli or gzip copies made at build time (`x.br`, `x.gz`) are
    /// sent to browsers that accept them.
    pub fn new(dist: &Path) -> Self {
        let index_path = dist.join("index.html");
        Self {
            dir: ServeDir::new(dist).precompressed_br().precompressed_gzip(),
            index: ServeFile::new(&index_path)
                .precompressed_br()
                .precompressed_gzip(),
            staff_index: ServeFile::new(dist.join("staff").join("index.html"))
                .precompressed_br()
                .precompressed_gzip(),
            kiosk_index: ServeFile::new(dist.join("kiosk").join("index.html"))
                .precompressed_br()
                .precompressed_gzip(),
            index_path,
        }
    }

    /// Whether the app has been built into the folder.
    pub fn is_built(&self) -> bool {
        self.index_path.is_file()
    }
}

/// Cache forever: the name changes whenever the content does.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Revalidate every time: the name stays while the content changes.
const REVALIDATE: &str = "no-cache";

/// The fallback of the router: a file of the app, or `index.html` for an app route.
pub async fn serve(files: &StaticFiles, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    // Build leftovers such as Trunk's `.trunk-lock` are not part of the app.
    if path.split('/').any(|segment| segment.starts_with('.')) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let app_route = is_app_route(&path);
    let result = if app_route && is_staff_route(&path) {
        files.staff_index.clone().oneshot(request).await
    } else if app_route && path == "/kiosk" {
        // The kiosk app: a download of its own, like the staff app's.
        files.kiosk_index.clone().oneshot(request).await
    } else if app_route {
        files.index.clone().oneshot(request).await
    } else {
        files.dir.clone().oneshot(request).await
    };
    let mut response = match result {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    };
    if app_route && response.status() == StatusCode::NOT_FOUND {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "The web app has not been built. Run `cargo xtask run` to build and serve it.",
        )
            .into_response();
    }
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        let cache = if !app_route && is_hashed(&path) {
            IMMUTABLE
        } else {
            REVALIDATE
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    }
    response
}

/// App routes (`/`, `/intake/abc`, `/preview/form.v2`) are every path whose last
/// segment does not end in the extension of a file the build makes; a missing file
/// is a 404, never the app's page. (FHIR ids may contain dots, so "has a dot" is
/// not enough.)
fn is_app_route(path: &str) -> bool {
    const FILE_EXTENSIONS: &[&str] = &[
        "html",
        "js",
        "mjs",
        "wasm",
        "css",
        "map",
        "svg",
        "png",
        "jpg",
        "jpeg",
        "gif",
        "webp",
        "ico",
        "json",
        "txt",
        "webmanifest",
        "woff",
        "woff2",
        "gz",
        "br",
    ];
    let last = path.rsplit('/').next().unwrap_or_default();
    !last.rsplit_once('.').is_some_and(|(_, extension)| {
        FILE_EXTENSIONS.contains(&extension.to_ascii_lowercase().as_str())
    })
}

/// The staff app's routes (its page is a download of its own: a patient's phone
/// never loads the staff screens).
fn is_staff_route(path: &str) -> bool {
    path == "/staff" || path.starts_with("/staff/")
}

/// Trunk names built files `name-<16 hex digits>[_bg].ext`.
fn is_hashed(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or_default();
    file.split(['-', '_', '.'])
        .any(|part| part.len() == 16 && part.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_routes_and_files_are_told_apart() {
        let cases = [
            ("/", true),
            ("/intake/abc123", true),
            ("/kiosk", true),
            ("/staff/review", true),
            ("/frontend-1a2b3c4d5e6f7a8b.js", false),
            ("/favicon.ico", false),
            ("/intake/photo.png", false),
            ("/preview/lforms--answerOption-valueCoding.choice.R4", true),
            ("/preview/v1.2", true),
            ("/app.JS", false),
        ];
        for (path, expected) in cases {
            assert_eq!(is_app_route(path), expected, "{path}");
        }
    }

    #[test]
    fn staff_routes_are_told_apart_from_the_patient_app() {
        for (path, expected) in [
            ("/staff", true),
            ("/staff/", true),
            ("/staff/review", true),
            ("/staff/review/task-1", true),
            ("/staffing", false),
            ("/intake/staff", false),
            ("/", false),
        ] {
            assert_eq!(is_staff_route(path), expected, "{path}");
        }
    }

    #[test]
    fn hashed_names_are_recognised() {
        let cases = [
            ("/frontend-1a2b3c4d5e6f7a8b.js", true),
            ("/frontend-1a2b3c4d5e6f7a8b_bg.wasm", true),
            ("/style-0123456789abcdef.css", true),
            ("/boot-0123456789abcdef.js", true),
            ("/index.html", false),
            ("/favicon.ico", false),
            ("/frontend-1a2b3c4d.js", false),
        ];
        for (path, expected) in cases {
            assert_eq!(is_hashed(path), expected, "{path}");
        }
    }
}
