//! `cargo xtask size`: what a phone downloads on its first visit (the patient app,
//! `dist/`, whose gzip total is what the budget counts), and what the kiosk app
//! (`dist/kiosk/`) and the staff app (`dist/staff/`), downloads of their own, weigh.

use std::path::Path;

use anyhow::{Context as _, bail};

use crate::dist::{brotli, gzip};

/// Prints raw, gzip -9 and brotli bytes of each file of both apps, and the totals.
pub(crate) fn report(root: &Path) -> anyhow::Result<()> {
    let dist = root.join("dist");
    if !dist.join("index.html").is_file() {
        bail!("no dist/index.html: build it first with `cargo xtask build-frontend`");
    }
    folder(&dist, "the patient app (dist/)")?;
    for (app, what) in [
        (
            "kiosk",
            "the kiosk app (dist/kiosk/), not in the patient's download",
        ),
        (
            "staff",
            "the staff app (dist/staff/), not in the patient's download",
        ),
    ] {
        let folder_of = dist.join(app);
        if folder_of.join("index.html").is_file() {
            folder(&folder_of, what)?;
        }
    }
    Ok(())
}

/// The table for the files directly in `dist` (not in its sub-folders).
fn folder(dist: &Path, what: &str) -> anyhow::Result<()> {
    let mut files: Vec<_> = std::fs::read_dir(dist)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file() && !matches!(p.extension().and_then(|e| e.to_str()), Some("gz" | "br"))
        })
        // Build leftovers such as `.trunk-lock`: the server does not serve them.
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    println!("\n==> size of what the browser loads: {what}");
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        "file", "raw", "gzip -9", "brotli"
    );
    let mut totals = [0usize; 3];
    for path in files {
        let raw = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let sizes = [raw.len(), gzip(&raw)?.len(), brotli(&raw)?.len()];
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!(
            "{name:<44} {:>10} {:>10} {:>10}",
            sizes[0], sizes[1], sizes[2]
        );
        for (total, size) in totals.iter_mut().zip(sizes) {
            *total += size;
        }
    }
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        "total", totals[0], totals[1], totals[2]
    );
    Ok(())
}
