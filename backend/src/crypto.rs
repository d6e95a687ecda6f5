//! Small cryptographic pieces every layer shares: hex, SHA-256, a comparison in
//! constant time, and the audit trail's MAC key, which lives outside the database
//! (`db::open` hands it to each connection; `audit` signs with it).

use sha2::{Digest, Sha256};

/// The file in the data folder that holds the audit key (hex), mode 0600.
pub const KEY_FILE: &str = "audit.key";
/// The environment variable that may hold the key instead (at least 32 bytes).
pub const KEY_ENV: &str = "INTAKE_AUDIT_KEY";

/// The audit trail's MAC key: `INTAKE_AUDIT_KEY` if set, else `audit.key` in
/// `data_dir`, made (32 random bytes, mode 0600) if missing. A key file others
/// can read is refused.
pub fn load_key(data_dir: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context as _;
    if let Ok(key) = std::env::var(KEY_ENV) {
        anyhow::ensure!(key.len() >= 32, "{KEY_ENV} must be at least 32 bytes");
        return Ok(key.into_bytes());
    }
    let path = data_dir.join(KEY_FILE);
    if !path.exists() {
        let mut bytes = [0_u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| anyhow::anyhow!("no randomness for the audit key"))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .with_context(|| format!("creating the audit key {}", path.display()))?;
        std::io::Write::write_all(&mut file, hex(&bytes).as_bytes())?;
        file.sync_all()?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path)?.permissions().mode();
        anyhow::ensure!(
            mode & 0o077 == 0,
            "the audit key {} can be read by others (mode {:o}): chmod 600 it",
            path.display(),
            mode & 0o777
        );
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the audit key {}", path.display()))?;
    let text = text.trim();
    anyhow::ensure!(
        text.len() >= 64 && text.len() % 2 == 0 && text.bytes().all(|b| b.is_ascii_hexdigit()),
        "the audit key {} is not hex of at least 32 bytes",
        path.display()
    );
    Ok((0..text.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect())
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// SHA-256 (hex) of `text`: how session ids, tokens and tried names are stored.
pub fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// Equality whose time does not depend on where the inputs first differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
