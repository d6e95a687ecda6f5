//! Trunk's post-build hook: make `dist/` fit the server's Content-Security-Policy
//! and precompress it.
//!
//! Trunk starts the app with an inline `<script type="module">` (trunk-rs/trunk#288),
//! which a CSP without 'unsafe-inline' blocks. We move that script into a file named
//! by its content hash, so it is cached like every other built file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Rewrites the staging folder Trunk hands its hooks (or the folder given).
pub(crate) fn finalize() -> anyhow::Result<()> {
    let dir = std::env::var_os("TRUNK_STAGING_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::args_os().nth(2).map(PathBuf::from))
        .context("no TRUNK_STAGING_DIR: run through Trunk, or pass the folder")?;
    let public_url = std::env::var("TRUNK_PUBLIC_URL").unwrap_or_else(|_| "/".to_owned());
    let index = dir.join("index.html");
    let html =
        std::fs::read_to_string(&index).with_context(|| format!("reading {}", index.display()))?;
    let (html, scripts) = externalize_inline_scripts(&html, &public_url);
    for (name, body) in &scripts {
        std::fs::write(dir.join(name), body)?;
    }
    std::fs::write(&index, html)?;
    let written = precompress(&dir)?;
    println!(
        "finalize-dist: {} inline script(s) moved to files, {written} files precompressed",
        scripts.len()
    );
    Ok(())
}

/// Replaces every inline `<script>` with one that loads the same code from a file
/// `boot-<hash>.js`, and drops `nonce` attributes (a nonce baked into a static file
/// would be the same on every response, which defeats it). Returns the new HTML
/// and the files to write.
pub(crate) fn externalize_inline_scripts(
    html: &str,
    public_url: &str,
) -> (String, Vec<(String, String)>) {
    let mut out = String::with_capacity(html.len());
    let mut files = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(tag_end) = after.find('>') else {
            break;
        };
        let tag = &after[..=tag_end];
        let Some(close) = after.find("</script>") else {
            break;
        };
        let body = &after[tag_end + 1..close];
        let attributes = strip_nonce(tag.trim_start_matches("<script").trim_end_matches('>'));
        if tag.contains(" src=") || body.trim().is_empty() {
            out.push_str(&format!("<script{attributes}>{body}</script>"));
        } else {
            let name = format!("boot-{:016x}.js", fnv1a(body.as_bytes()));
            out.push_str(&format!(
                "<script{attributes} src=\"{public_url}{name}\"></script>"
            ));
            files.push((name, body.trim().to_owned() + "\n"));
        }
        rest = &after[close + "</script>".len()..];
    }
    out.push_str(rest);
    (strip_nonce(&out), files)
}

fn strip_nonce(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(" nonce=\"") {
        out.push_str(&rest[..start]);
        let value = &rest[start + " nonce=\"".len()..];
        match value.find('"') {
            Some(end) => rest = &value[end + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// FNV-1a, 64 bits: stable across Rust versions, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Files worth compressing: text and WebAssembly (images are compressed already).
fn compressible(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("html" | "js" | "mjs" | "wasm" | "css" | "svg" | "json" | "txt" | "map")
    )
}

/// Writes `x.br` (brotli, quality 11) and `x.gz` (gzip -9) beside every
/// compressible file `x`, for the server to send as they are.
fn precompress(dir: &Path) -> anyhow::Result<usize> {
    let mut written = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            written += precompress(&path)?;
            continue;
        }
        if !compressible(&path) {
            continue;
        }
        let raw = std::fs::read(&path)?;
        let with_suffix = |suffix: &str| {
            let mut name = path.clone().into_os_string();
            name.push(suffix);
            PathBuf::from(name)
        };
        std::fs::write(with_suffix(".gz"), gzip(&raw)?)?;
        std::fs::write(with_suffix(".br"), brotli(&raw)?)?;
        written += 1;
    }
    Ok(written)
}

pub(crate) fn gzip(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(raw)?;
    encoder.finish()
}

pub(crate) fn brotli(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &raw[..], &mut out, &params)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_module_scripts_move_to_hashed_files() {
        let html = "<head><link rel=\"modulepreload\" href=\"/app-1.js\" nonce=\"abc\">\
            <script type=\"module\" nonce=\"abc\">\nimport init from '/app-1.js';\nawait init();\n</script>\
            <script src=\"/other.js\"></script></head>";
        let (out, files) = externalize_inline_scripts(html, "/");
        assert_eq!(files.len(), 1);
        let (name, body) = &files[0];
        assert!(
            name.starts_with("boot-")
                && name.ends_with(".js")
                && name.len() == "boot-.js".len() + 16
        );
        assert_eq!(body, "import init from '/app-1.js';\nawait init();\n");
        assert_eq!(
            out,
            format!(
                "<head><link rel=\"modulepreload\" href=\"/app-1.js\">\
                 <script type=\"module\" src=\"/{name}\"></script><script src=\"/other.js\"></script></head>"
            )
        );
        assert!(!out.contains("nonce"));
    }

    #[test]
    fn the_file_name_changes_with_the_content() {
        let (_, a) = externalize_inline_scripts("<script type=\"module\">a()</script>", "/");
        let (_, b) = externalize_inline_scripts("<script type=\"module\">b()</script>", "/");
        assert_ne!(a[0].0, b[0].0);
    }

    #[test]
    fn compressed_copies_decompress_to_the_original() {
        let raw = b"(module) (module) (module) (module) (module) (module)".repeat(50);
        let mut gz = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&gzip(&raw).unwrap()[..]),
            &mut gz,
        )
        .unwrap();
        assert_eq!(gz, raw);
        let mut br = Vec::new();
        ::brotli::BrotliDecompress(&mut &brotli(&raw).unwrap()[..], &mut br).unwrap();
        assert_eq!(br, raw);
    }
}
