//! Where new resource ids come from: random UUIDs, or a sequence in tests.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};

/// New ids for extracted resources (their `urn:uuid:` fullUrls), behind a trait
/// so tests get the same ids every run.
pub trait IdGenerator: Send + Sync + Debug {
    /// A new UUID, as text.
    fn uuid(&self) -> String;
}

/// Random version-4 UUIDs, from the operating system's random source.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn uuid(&self) -> String {
        use std::hash::{BuildHasher as _, Hasher as _};
        let mut bytes = [0u8; 16];
        if !os_random(&mut bytes) {
            // No /dev/urandom: std's per-process random hash keys. These ids only
            // need to be unique within one Bundle.
            for (i, chunk) in bytes.chunks_mut(8).enumerate() {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_usize(i);
                chunk.copy_from_slice(&h.finish().to_le_bytes());
            }
        }
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        uuid_text(&bytes)
    }
}

/// Fills `bytes` from the operating system's random source, read a few kilobytes
/// at a time per thread: an intake takes half a dozen ids, and opening
/// `/dev/urandom` for each was three system calls apiece. False if it cannot be read.
pub(crate) fn os_random(bytes: &mut [u8]) -> bool {
    use std::cell::RefCell;
    use std::io::{BufReader, Read as _};
    thread_local! {
        static URANDOM: RefCell<Option<BufReader<std::fs::File>>> = const { RefCell::new(None) };
    }
    URANDOM.with(|source| {
        let mut source = source.borrow_mut();
        if source.is_none() {
            *source = std::fs::File::open("/dev/urandom")
                .ok()
                .map(|f| BufReader::with_capacity(4096, f));
        }
        let read = source.as_mut().is_some_and(|f| f.read_exact(bytes).is_ok());
        if !read {
            *source = None;
        }
        read
    })
}

/// `00000000-0000-4000-8000-000000000001`, `…002`, …: for tests and snapshots.
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl IdGenerator for SequentialIds {
    fn uuid(&self) -> String {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        format!("00000000-0000-4000-8000-{n:012x}")
    }
}

pub(crate) fn uuid_text(b: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        text.push(char::from(HEX[usize::from(x >> 4)]));
        text.push(char::from(HEX[usize::from(x & 0x0f)]));
    }
    text
}
