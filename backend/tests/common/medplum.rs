//! A real FHIR R4 server for tests: Medplum's FhirRouter over an in-memory, validating
//! repository (`tests/peers/medplum/server.mjs`, npm's `@medplum/fhir-router` 5.2.13,
//! installed by `cargo xtask setup`), run with `node` on 127.0.0.1 in a process group of
//! its own that is killed on drop.
//!
//! ```ignore
//! let peer = MedplumPeer::start(&PeerOptions::default().bearer_token("secret"));
//! let url = format!("{}/Patient", peer.base_url()); // http://127.0.0.1:PORT/fhir/R4/Patient
//! ```

use std::io::{BufRead as _, BufReader, Read as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p384::ecdsa::signature::Signer as _;
use p384::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use serde_json::{Value, json};

/// How long the peer may take to load FHIR's definitions and listen (about 1.5 s on an
/// idle machine; much longer on two cores shared with builds).
const STARTUP: Duration = Duration::from_secs(90);

/// What the peer is started with (its environment, see `server.mjs`).
#[derive(Clone, Debug, Default)]
pub(crate) struct PeerOptions {
    bearer_token: Option<String>,
    smart: Option<(PathBuf, String)>,
    token_ttl: Option<u32>,
}

impl PeerOptions {
    /// Every FHIR request must carry `Authorization: Bearer {token}` (or a SMART token).
    pub(crate) fn bearer_token(mut self, token: &str) -> Self {
        self.bearer_token = Some(token.to_owned());
        self
    }

    /// SMART backend services at `/oauth2/token` for `client_id`, whose assertions are
    /// checked with the public key (JWK, JWKS or PEM) at `public_key`; FHIR requests then
    /// need a bearer token.
    pub(crate) fn smart(mut self, public_key: &Path, client_id: &str) -> Self {
        self.smart = Some((public_key.to_owned(), client_id.to_owned()));
        self
    }

    /// How long the tokens it issues last, in seconds (default 300).
    pub(crate) fn token_ttl(mut self, seconds: u32) -> Self {
        self.token_ttl = Some(seconds);
        self
    }
}

/// The running peer; dropping it kills its process group.
#[derive(Debug)]
pub(crate) struct MedplumPeer {
    child: Child,
    origin: String,
    stderr: Arc<Mutex<String>>,
}

/// `backend/tests/peers/medplum`.
pub(crate) fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/medplum")
}

impl MedplumPeer {
    /// Starts `node server.mjs` and waits for its `listening on` line. Panics, with the
    /// peer's stderr, if it does not come.
    pub(crate) fn start(options: &PeerOptions) -> Self {
        let dir = peer_dir();
        assert!(
            dir.join("node_modules/@medplum/fhir-router/package.json")
                .is_file(),
            "the Medplum FHIR peer is not installed ({} has no node_modules): run `cargo xtask \
             setup`, which runs `npm ci` there",
            dir.display()
        );
        let mut command = Command::new(std::env::var_os("NODE").unwrap_or_else(|| "node".into()));
        command
            .arg("server.mjs")
            .arg("0")
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so that dropping the peer kills whatever it started.
            .process_group(0);
        for name in [
            "PEER_BEARER_TOKEN",
            "PEER_SMART_PUBLIC_JWK",
            "PEER_SMART_CLIENT_ID",
            "PEER_SMART_TOKEN_TTL",
        ] {
            command.env_remove(name);
        }
        if let Some(token) = &options.bearer_token {
            command.env("PEER_BEARER_TOKEN", token);
        }
        if let Some((key, client_id)) = &options.smart {
            command
                .env("PEER_SMART_PUBLIC_JWK", key)
                .env("PEER_SMART_CLIENT_ID", client_id);
        }
        if let Some(ttl) = options.token_ttl {
            command.env("PEER_SMART_TOKEN_TTL", ttl.to_string());
        }
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "starting `node` for the Medplum FHIR peer: {e} (`cargo xtask setup` installs Node)"
            )
        });

        // Drain both pipes for the peer's whole life, so it never blocks on a full one.
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock()
                    .expect("stderr lock")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (ready, listening) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(base) = line.strip_prefix("listening on ") {
                    let _ = ready.send(base.to_owned());
                }
            }
        });

        let mut peer = Self {
            child,
            origin: String::new(),
            stderr,
        };
        match listening.recv_timeout(STARTUP) {
            Ok(base) => {
                peer.origin = base
                    .strip_suffix("/fhir/R4")
                    .unwrap_or_else(|| panic!("unexpected base URL {base}"))
                    .to_owned();
                peer
            }
            Err(e) => {
                let exit = peer.child.try_wait().ok().flatten();
                panic!(
                    "the Medplum FHIR peer did not start ({e}; exit: {exit:?}); its stderr:\n{}",
                    peer.stderr()
                )
            }
        }
    }

    /// `http://127.0.0.1:PORT/fhir/R4`.
    pub(crate) fn base_url(&self) -> String {
        format!("{}/fhir/R4", self.origin)
    }

    /// `http://127.0.0.1:PORT/oauth2/token`, the SMART token endpoint (the `aud` of a
    /// client's assertion).
    pub(crate) fn token_url(&self) -> String {
        format!("{}/oauth2/token", self.origin)
    }

    /// The node process (also its process group), for SIGSTOP/SIGCONT.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Freezes the peer (SIGSTOP): connections are accepted by the kernel, nothing is
    /// answered, as with a hung EMR.
    pub(crate) fn pause(&self) {
        self.signal("STOP");
    }

    /// Lets a paused peer go on (SIGCONT).
    pub(crate) fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} {}", self.pid());
    }

    /// What the peer wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// `{"tokensIssued", "tokenRequests", "requests": {"GET": n, …}}`: FHIR requests
    /// received by method (refused and injected failures included).
    pub(crate) async fn stats(&self) -> Value {
        reqwest::get(format!("{}/__peer/stats", self.origin))
            .await
            .expect("stats")
            .json()
            .await
            .expect("stats JSON")
    }

    /// The next `count` FHIR requests answer `status` with an OperationOutcome (and
    /// `Retry-After: {seconds}` when given).
    pub(crate) async fn fail_next(&self, status: u16, count: u32, retry_after: Option<u32>) {
        self.fail(status, count, retry_after, "").await;
    }

    /// [`MedplumPeer::fail_next`] for transaction Bundles only (searches and reads
    /// still answer).
    pub(crate) async fn fail_next_transactions(&self, status: u16, count: u32) {
        self.fail(status, count, None, "&only=transactions").await;
    }

    /// After `after` more transaction Bundles are answered, the next `count` are
    /// carried out (written) but their answers withheld until [`MedplumPeer::release`]
    /// or the client hangs up: the EMR committed, the client never heard. `stats()`'s
    /// `held` counts the answers withheld now.
    pub(crate) async fn hold_transactions(&self, after: u32, count: u32) {
        self.post_switch(&format!("hold?after={after}&count={count}"))
            .await;
    }

    /// Answers the transactions [`MedplumPeer::hold_transactions`] withheld, and holds
    /// no more.
    pub(crate) async fn release(&self) {
        self.post_switch("release").await;
    }

    async fn post_switch(&self, path: &str) {
        let res = reqwest::Client::new()
            .post(format!("{}/__peer/{path}", self.origin))
            .send()
            .await
            .expect("peer switch");
        assert!(res.status().is_success(), "{path}: {}", res.status());
    }

    async fn fail(&self, status: u16, count: u32, retry_after: Option<u32>, only: &str) {
        let mut url = format!(
            "{}/__peer/fail?status={status}&count={count}{only}",
            self.origin
        );
        if let Some(seconds) = retry_after {
            url.push_str(&format!("&retryAfter={seconds}"));
        }
        let res = reqwest::Client::new()
            .post(url)
            .send()
            .await
            .expect("fail switch");
        assert!(res.status().is_success(), "fail switch: {}", res.status());
    }
}

impl Drop for MedplumPeer {
    fn drop(&mut self) {
        // KILL, not TERM: a paused (SIGSTOPped) peer would not act on TERM.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// An ES384 key pair for SMART backend services tests: the private key signs the
/// client's assertions, the public one is written as PEM for the peer to check them.
pub(crate) struct Es384Key {
    signing: p384::ecdsa::SigningKey,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for Es384Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Es384Key")
            .field("public_key", &self.public_key_path())
            .finish_non_exhaustive()
    }
}

impl Es384Key {
    /// A new random key.
    pub(crate) fn generate() -> Self {
        let mut urandom = std::fs::File::open("/dev/urandom").expect("/dev/urandom");
        let signing = loop {
            let mut bytes = [0u8; 48];
            urandom.read_exact(&mut bytes).expect("random bytes");
            // Fails only for a value at or above the group order: try again.
            if let Ok(key) = p384::ecdsa::SigningKey::from_slice(&bytes) {
                break key;
            }
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let pem = signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("public key PEM");
        std::fs::write(dir.path().join("public.pem"), pem).expect("writes the public key");
        Self { signing, dir }
    }

    /// The public key, as PEM (SubjectPublicKeyInfo), for [`PeerOptions::smart`].
    pub(crate) fn public_key_path(&self) -> PathBuf {
        self.dir.path().join("public.pem")
    }

    /// The private key as PKCS#8 PEM, as a client's configuration would hold it.
    pub(crate) fn private_key_pem(&self) -> String {
        self.signing
            .to_pkcs8_pem(LineEnding::LF)
            .expect("private key PEM")
            .to_string()
    }

    /// A SMART backend services client assertion: a JWT signed ES384 with `iss` and
    /// `sub` the client id, `aud` the token URL, `exp` in a minute and the given `jti`.
    pub(crate) fn assertion(&self, client_id: &str, token_url: &str, jti: &str) -> String {
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
            + 60;
        let claims =
            json!({ "iss": client_id, "sub": client_id, "aud": token_url, "exp": exp, "jti": jti });
        self.sign(&json!({ "alg": "ES384", "typ": "JWT" }), &claims)
    }

    /// A compact JWS of `header` and `claims` (the signature is R || S, as JWS wants).
    pub(crate) fn sign(&self, header: &Value, claims: &Value) -> String {
        let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("JSON"));
        let input = format!("{}.{}", encode(header), encode(claims));
        let signature: p384::ecdsa::Signature = self.signing.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}
