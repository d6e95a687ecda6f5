//! How the remote EMR client authenticates: not at all, with a static bearer
//! token, or with SMART backend services (a `client_credentials` grant with a
//! `private_key_jwt` client assertion signed ES384 or RS384), the access token
//! cached until shortly before it expires.
//!
//! <https://hl7.org/fhir/smart-app-launch/backend-services.html>

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, RsaKeyPair};
use serde_json::{Value, json};

use super::EmrError;

/// The client assertion's lifetime (SMART: at most five minutes).
const ASSERTION_LIFETIME: Duration = Duration::from_secs(240);
/// A token's lifetime when the token endpoint does not say (SMART: it should).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// Longer lifetimes are taken as this (and an absurd `expires_in` cannot overflow).
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// A token is renewed this long before it expires (a tenth of its lifetime for
/// short-lived tokens), so that it does not expire on the way.
const RENEW_BEFORE: Duration = Duration::from_secs(30);

/// How requests are authorised.
pub(crate) enum Auth {
    /// No `Authorization` header.
    None,
    /// `Authorization: Bearer {token}`, always the same.
    Bearer(Arc<str>),
    /// SMART backend services.
    Smart(Box<Smart>),
}

impl std::fmt::Debug for Auth {
    // Never the token or the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Bearer(_) => f.write_str("Bearer([redacted])"),
            Auth::Smart(smart) => f
                .debug_struct("Smart")
                .field("client_id", &smart.client_id)
                .field("alg", &smart.key.alg())
                .field("kid", &smart.kid)
                .field("token_url", &smart.token_url.get())
                .field("scope", &smart.scope)
                .finish_non_exhaustive(),
        }
    }
}

impl Auth {
    /// The bearer token to send now, if any (fetching a SMART one when there is
    /// none, or it is about to expire).
    pub(crate) async fn token(&self) -> Result<Option<Arc<str>>, EmrError> {
        match self {
            Auth::None => Ok(None),
            Auth::Bearer(token) => Ok(Some(token.clone())),
            Auth::Smart(smart) => smart.token().await.map(Some),
        }
    }

    /// Whether a 401 may be cured by a new token (SMART only: a static token
    /// stays wrong).
    pub(crate) fn renewable(&self) -> bool {
        matches!(self, Auth::Smart(_))
    }

    /// Forgets `used` after the EMR refused it (401), so the next request gets
    /// a new one. A token another request already replaced is left alone.
    pub(crate) async fn refused(&self, used: Option<&str>) {
        if let (Auth::Smart(smart), Some(used)) = (self, used) {
            let mut cached = smart.cached.lock().await;
            if cached.as_ref().is_some_and(|t| &*t.access == used) {
                *cached = None;
            }
        }
    }
}

/// A private key that signs client assertions.
pub(crate) enum SigningKey {
    /// EC P-384: ES384.
    Es384(EcdsaKeyPair),
    /// RSA: RS384.
    Rs384(RsaKeyPair),
}

impl SigningKey {
    /// Reads a PKCS#8 PEM private key (an RSA key may also be PKCS#1, `BEGIN RSA
    /// PRIVATE KEY`). Errors say what is wrong with the key, never its content.
    pub(crate) fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let (label, der) =
            pem_block(pem).ok_or_else(|| anyhow::anyhow!("the private key file is not PEM"))?;
        match label.as_str() {
            "PRIVATE KEY" => {
                if let Ok(key) = EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                    &der,
                    &SystemRandom::new(),
                ) {
                    return Ok(SigningKey::Es384(key));
                }
                RsaKeyPair::from_pkcs8(&der)
                    .map(SigningKey::Rs384)
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "the private key is neither an EC P-384 key (ES384) nor an RSA key \
                             of 2048 bits or more (RS384): {e}"
                        )
                    })
            }
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der)
                .map(SigningKey::Rs384)
                .map_err(|e| anyhow::anyhow!("the RSA private key is not usable: {e}")),
            "EC PRIVATE KEY" => anyhow::bail!(
                "the EC private key is in SEC1 form: convert it to PKCS#8 with `openssl pkcs8 \
                 -topk8 -nocrypt -in key.pem -out key.p8.pem`"
            ),
            "ENCRYPTED PRIVATE KEY" => {
                anyhow::bail!("the private key is encrypted: give an unencrypted PKCS#8 key")
            }
            other => anyhow::bail!("the PEM file holds a {other:?}, not a PKCS#8 private key"),
        }
    }

    /// The JWS `alg`.
    pub(crate) fn alg(&self) -> &'static str {
        match self {
            SigningKey::Es384(_) => "ES384",
            SigningKey::Rs384(_) => "RS384",
        }
    }

    fn sign(&self, input: &[u8]) -> Result<Vec<u8>, ring::error::Unspecified> {
        let rng = SystemRandom::new();
        match self {
            // FIXED: r || s, as JWS wants (not DER).
            SigningKey::Es384(key) => Ok(key.sign(&rng, input)?.as_ref().to_vec()),
            SigningKey::Rs384(key) => {
                let mut out = vec![0; key.public().modulus_len()];
                key.sign(&signature::RSA_PKCS1_SHA384, &rng, input, &mut out)?;
                Ok(out)
            }
        }
    }
}

/// The first PEM block: its label and its decoded content.
fn pem_block(pem: &str) -> Option<(String, Vec<u8>)> {
    let start = pem.find("-----BEGIN ")?;
    let rest = &pem[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_owned();
    let body = &rest[label_end + 5..];
    let end = body.find(&format!("-----END {label}-----"))?;
    let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    Some((label, STANDARD.decode(b64).ok()?))
}

/// A cached access token.
struct Token {
    access: Arc<str>,
    /// When to stop using it (before it expires).
    renew_at: Instant,
}

/// SMART backend services: the client, its key, and the cached token.
pub(crate) struct Smart {
    pub(crate) client_id: String,
    pub(crate) key: SigningKey,
    pub(crate) kid: Option<String>,
    pub(crate) scope: String,
    /// The FHIR base, for discovery (`.well-known/smart-configuration`).
    pub(crate) base: String,
    /// The token endpoint: configured, or discovered once.
    pub(crate) token_url: tokio::sync::OnceCell<String>,
    pub(crate) http: reqwest::Client,
    /// One at a time: concurrent requests wait for the one token being fetched.
    cached: tokio::sync::Mutex<Option<Token>>,
}

impl Smart {
    /// A client with no token yet.
    pub(crate) fn new(
        client_id: String,
        key: SigningKey,
        kid: Option<String>,
        scope: String,
        base: String,
        token_url: Option<String>,
        http: reqwest::Client,
    ) -> Self {
        Self {
            client_id,
            key,
            kid,
            scope,
            base,
            token_url: token_url.map_or_else(tokio::sync::OnceCell::new, |url| {
                tokio::sync::OnceCell::new_with(Some(url))
            }),
            http,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    async fn token(&self) -> Result<Arc<str>, EmrError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(token.access.clone());
        }
        let token = self.fetch().await?;
        let access = token.access.clone();
        *cached = Some(token);
        Ok(access)
    }

    async fn token_url(&self) -> Result<&str, EmrError> {
        self.token_url
            .get_or_try_init(|| async {
                let url = format!("{}/.well-known/smart-configuration", self.base);
                let res = self
                    .http
                    .get(&url)
                    .header(reqwest::header::ACCEPT, "application/json")
                    .send()
                    .await
                    .map_err(|e| unavailable(&format!("SMART discovery: {}", describe(&e))))?;
                let status = res.status();
                if !status.is_success() {
                    return Err(unavailable(&format!(
                        "SMART discovery: the EMR answered {}",
                        status.as_u16()
                    )));
                }
                let config: Value = res.json().await.map_err(|_| {
                    unavailable("SMART discovery: .well-known/smart-configuration is not JSON")
                })?;
                config["token_endpoint"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        unavailable("SMART discovery: the configuration has no token_endpoint")
                    })
            })
            .await
            .map(String::as_str)
    }

    /// A client assertion for `token_url`, valid for a few minutes.
    fn assertion(&self, token_url: &str) -> Result<String, EmrError> {
        let rng = SystemRandom::new();
        let mut jti = [0u8; 16];
        rng.fill(&mut jti)
            .map_err(|_| unavailable("no random numbers for the client assertion"))?;
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(ASSERTION_LIFETIME)
            .as_secs();
        let mut header = json!({"alg": self.key.alg(), "typ": "JWT"});
        if let Some(kid) = &self.kid {
            header["kid"] = json!(kid);
        }
        let claims = json!({
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": token_url,
            "exp": exp,
            "jti": URL_SAFE_NO_PAD.encode(jti),
        });
        let encode = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let input = format!("{}.{}", encode(&header), encode(&claims));
        let signature = self
            .key
            .sign(input.as_bytes())
            .map_err(|_| unavailable("signing the client assertion failed"))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    async fn fetch(&self) -> Result<Token, EmrError> {
        let token_url = self.token_url().await?.to_owned();
        let assertion = self.assertion(&token_url)?;
        let asked = Instant::now();
        let res = self
            .http
            .post(&token_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.as_str()),
                ("scope", self.scope.as_str()),
            ])
            .send()
            .await
            .map_err(|e| unavailable(&format!("SMART token: {}", describe(&e))))?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            // OAuth's error code and description name the client's problem (a bad
            // signature, an unknown client): no patient data, and what to fix.
            let said = |k: &str| body[k].as_str().unwrap_or_default().chars().take(200);
            return Err(unavailable(&format!(
                "SMART token: the token endpoint answered {}: {} {}",
                status.as_u16(),
                said("error").collect::<String>(),
                said("error_description").collect::<String>(),
            )));
        }
        let access = body["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unavailable("SMART token: the answer has no access_token"))?;
        let lifetime = body["expires_in"]
            .as_u64()
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs)
            .min(MAX_TOKEN_LIFETIME);
        let renew_at = asked + lifetime - RENEW_BEFORE.min(lifetime / 10);
        tracing::info!(
            emr.token_lifetime_s = lifetime.as_secs(),
            "SMART access token issued"
        );
        Ok(Token {
            access: access.into(),
            renew_at,
        })
    }
}

fn unavailable(reason: &str) -> EmrError {
    EmrError::Unavailable {
        reason: reason.to_owned(),
        retry_after_ms: None,
    }
}

/// What went wrong with a request, without its URL (a search's URL holds patient
/// data) or anything the server said.
pub(crate) fn describe(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off or was malformed"
    } else if e.is_redirect() {
        "too many redirects"
    } else {
        "the request failed"
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn pem_blocks_are_read_by_label_and_non_keys_refused_with_a_reason() {
        let (label, der) =
            pem_block("junk\n-----BEGIN PRIVATE KEY-----\nAAEC\nAw==\n-----END PRIVATE KEY-----\n")
                .unwrap();
        assert_eq!(label, "PRIVATE KEY");
        assert_eq!(der, [0, 1, 2, 3]);
        assert!(pem_block("no pem here").is_none());
        let sec1 = "-----BEGIN EC PRIVATE KEY-----\nAAEC\n-----END EC PRIVATE KEY-----\n";
        let e = SigningKey::from_pem(sec1).err().unwrap().to_string();
        assert!(e.contains("PKCS#8"), "{e}");
        let cert = "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n";
        assert!(SigningKey::from_pem(cert).is_err());
        let garbage = "-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----\n";
        assert!(SigningKey::from_pem(garbage).is_err());
    }
}
