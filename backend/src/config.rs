//! Server settings, from the command line or the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything `intake serve` needs to start.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Address to listen on. Use port 0 for any free port.
    #[arg(long, env = "INTAKE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Folder for the embedded database (created if missing).
    #[arg(long, env = "INTAKE_DATA", default_value = "./data")]
    pub data: PathBuf,
    /// Folder with the built web app (Trunk's `dist/`).
    #[arg(long, env = "INTAKE_DIST", default_value = "./dist")]
    pub dist: PathBuf,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "INTAKE_MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,
    /// The patient matching engine's settings (each defaults to the engine's own).
    #[command(flatten)]
    pub matching: MatchingArgs,
    /// How the outbox retries deliveries to the EMR.
    #[command(flatten)]
    pub delivery: DeliveryArgs,
    /// The remote EMR (without its URL, the embedded store is the EMR).
    #[command(flatten)]
    pub emr: RemoteArgs,
    /// What strangers may do: unverified intakes, rate limits, proxies,
    /// connection limits (issue 21).
    #[command(flatten)]
    pub guard: GuardArgs,
    /// The address patients reach the app at (`https://intake.example.org`):
    /// invitation links are built from it. Without it, from the scheme and
    /// host each request came in with.
    #[arg(long, env = "INTAKE_PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// `intake serve`'s defences against one caller harming the patients or the
/// server. Each defaults as [`Guard::default`] says.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct GuardArgs {
    /// An intake without proof of identity (the public page, a token not allowed
    /// to link) that matches a chart: `review` (default: a proposed link staff
    /// confirm) or `link` (filed in the chart, as before).
    #[arg(long, env = "INTAKE_UNVERIFIED_INTAKES", value_enum)]
    pub unverified_intakes: Option<Unverified>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (comma-separated IP
    /// addresses). From any other peer the header is ignored.
    #[arg(long, env = "INTAKE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Requests a minute to the public routes (intakes, `$validate`, kiosk
    /// enrolment, invitations) from one address without credentials. Default 60.
    #[arg(long, env = "INTAKE_RATE_PUBLIC_PER_MINUTE")]
    pub rate_public_per_minute: Option<u32>,
    /// Requests a minute from one token or signed-in person. Default 60000.
    #[arg(long, env = "INTAKE_RATE_CLIENT_PER_MINUTE")]
    pub rate_client_per_minute: Option<u32>,
    /// Seconds a connection may take to send a request's headers, counted from
    /// when the server waits for them: also how long an idle keep-alive
    /// connection stays open. Default 10.
    #[arg(long, env = "INTAKE_HEADER_TIMEOUT_SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds a request may take to send its body. Default 30.
    #[arg(long, env = "INTAKE_BODY_TIMEOUT_SECS")]
    pub body_timeout_secs: Option<u64>,
    /// Connections served at once; more wait in the kernel's backlog. Default 512.
    #[arg(long, env = "INTAKE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
}

/// [`GuardArgs`] with the defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guard {
    /// See [`GuardArgs::unverified_intakes`].
    pub unverified: Unverified,
    /// See [`GuardArgs::trusted_proxies`].
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// See [`GuardArgs::rate_public_per_minute`].
    pub public_per_minute: u32,
    /// See [`GuardArgs::rate_client_per_minute`].
    pub client_per_minute: u32,
    /// See [`GuardArgs::header_timeout_secs`].
    pub header_timeout: std::time::Duration,
    /// See [`GuardArgs::body_timeout_secs`].
    pub body_timeout: std::time::Duration,
    /// See [`GuardArgs::max_connections`].
    pub max_connections: usize,
}

impl Default for Guard {
    fn default() -> Self {
        Self {
            unverified: Unverified::Review,
            trusted_proxies: Vec::new(),
            public_per_minute: 60,
            client_per_minute: 60_000,
            header_timeout: std::time::Duration::from_secs(10),
            body_timeout: std::time::Duration::from_secs(30),
            max_connections: 512,
        }
    }
}

/// `intake serve`'s delivery (outbox) options.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct DeliveryArgs {
    /// Delivery to the EMR: the first retry's delay in milliseconds (doubling, with
    /// jitter, up to the maximum). Default 500.
    #[arg(long, env = "INTAKE_DELIVERY_RETRY_MS")]
    pub delivery_retry_ms: Option<u64>,
    /// Delivery to the EMR: the longest delay between attempts, in milliseconds.
    /// Default 300000 (5 minutes).
    #[arg(long, env = "INTAKE_DELIVERY_RETRY_MAX_MS")]
    pub delivery_retry_max_ms: Option<u64>,
    /// Delivery to the EMR: attempts before a delivery is dead-lettered for staff.
    /// Default 20 (about an hour and a half with the default delays).
    #[arg(long, env = "INTAKE_DELIVERY_MAX_ATTEMPTS")]
    pub delivery_max_attempts: Option<u32>,
}

/// The outbox's retry policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// First retry delay (ms).
    pub retry_ms: u64,
    /// Longest delay (ms).
    pub retry_max_ms: u64,
    /// Attempts before dead-lettering.
    pub max_attempts: u32,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            retry_ms: 500,
            retry_max_ms: 300_000,
            max_attempts: 20,
        }
    }
}

/// `intake serve`'s patient matching options.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct MatchingArgs {
    /// Patient matching: match probability (0 to 1) from which a match is
    /// `certain` and linked without review.
    #[arg(long, env = "INTAKE_MATCH_CERTAIN")]
    pub match_certain: Option<f64>,
    /// Patient matching: match probability from which a match is `probable`
    /// (reviewed by staff).
    #[arg(long, env = "INTAKE_MATCH_PROBABLE")]
    pub match_probable: Option<f64>,
    /// Patient matching: match probability from which a candidate is shown as
    /// `possible`.
    #[arg(long, env = "INTAKE_MATCH_POSSIBLE")]
    pub match_possible: Option<f64>,
    /// Patient matching: most candidates one blocking key may bring.
    #[arg(long, env = "INTAKE_MATCH_BLOCK_CAP")]
    pub match_block_cap: Option<usize>,
    /// Patient matching: the country calling code of phone numbers written without one.
    #[arg(long, env = "INTAKE_MATCH_COUNTRY_CODE")]
    pub match_country_code: Option<String>,
}

impl Config {
    /// The defences' settings: defaults, with what was given here.
    pub fn guard(&self) -> anyhow::Result<Guard> {
        let d = Guard::default();
        let a = &self.guard;
        let secs = std::time::Duration::from_secs;
        let guard = Guard {
            unverified: a.unverified_intakes.unwrap_or(d.unverified),
            trusted_proxies: a.trusted_proxies.clone(),
            public_per_minute: a.rate_public_per_minute.unwrap_or(d.public_per_minute),
            client_per_minute: a.rate_client_per_minute.unwrap_or(d.client_per_minute),
            header_timeout: a.header_timeout_secs.map_or(d.header_timeout, secs),
            body_timeout: a.body_timeout_secs.map_or(d.body_timeout, secs),
            max_connections: a.max_connections.unwrap_or(d.max_connections),
        };
        anyhow::ensure!(
            guard.public_per_minute >= 1 && guard.client_per_minute >= 1,
            "rate limits are at least 1 request a minute"
        );
        anyhow::ensure!(
            !guard.header_timeout.is_zero() && !guard.body_timeout.is_zero(),
            "connection timeouts are at least 1 second"
        );
        anyhow::ensure!(
            guard.max_connections >= 1,
            "at least one connection must be served"
        );
        Ok(guard)
    }

    /// The public URL, checked (`http(s)://host[:port][/path]`), without a
    /// trailing `/`.
    pub fn public_url(&self) -> anyhow::Result<Option<String>> {
        let Some(url) = self.public_url.as_deref().map(str::trim) else {
            return Ok(None);
        };
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .unwrap_or_default();
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || url.contains(['?', '#', ' ']) {
            anyhow::bail!(
                "INTAKE_PUBLIC_URL must be an http(s) address such as https://intake.example.org"
            );
        }
        Ok(Some(url.trim_end_matches('/').to_owned()))
    }

    /// The outbox's retry policy: defaults, with what was given here.
    pub fn delivery(&self) -> anyhow::Result<Delivery> {
        let d = Delivery::default();
        let args = &self.delivery;
        let delivery = Delivery {
            retry_ms: args.delivery_retry_ms.unwrap_or(d.retry_ms),
            retry_max_ms: args.delivery_retry_max_ms.unwrap_or(d.retry_max_ms),
            max_attempts: args.delivery_max_attempts.unwrap_or(d.max_attempts),
        };
        anyhow::ensure!(
            delivery.retry_ms >= 1 && delivery.retry_max_ms >= delivery.retry_ms,
            "delivery retry delays must be at least 1 ms, the maximum no less than the first"
        );
        anyhow::ensure!(
            delivery.max_attempts >= 1,
            "delivery needs at least one attempt"
        );
        Ok(delivery)
    }

    /// The matching engine's settings: its defaults, with what was given here.
    /// Thresholds are match probabilities; out of (0, 1) or out of order
    /// (`certain` below `probable`, ...) they are refused.
    pub fn matching(&self) -> anyhow::Result<matching::Config> {
        let args = &self.matching;
        let mut config = matching::Config::default();
        let [c, p, q] = matching::Thresholds::DEFAULT_PROBABILITIES;
        let (c, p, q) = (
            args.match_certain.unwrap_or(c),
            args.match_probable.unwrap_or(p),
            args.match_possible.unwrap_or(q),
        );
        config.thresholds = matching::Thresholds::from_probabilities(c, p, q).ok_or_else(|| {
            anyhow::anyhow!(
                "matching thresholds are probabilities between 0 and 1 that do not decrease: \
                 certain {c} >= probable {p} >= possible {q}"
            )
        })?;
        if let Some(cap) = args.match_block_cap {
            anyhow::ensure!(cap > 0, "the matching block cap must be at least 1");
            config.block_cap = cap;
        }
        if let Some(code) = &args.match_country_code {
            anyhow::ensure!(
                !code.is_empty() && code.len() <= 3 && code.bytes().all(|b| b.is_ascii_digit()),
                "the matching country code is 1 to 3 digits, e.g. 1 or 44"
            );
            config.default_country.clone_from(code);
        }
        Ok(config)
    }
}

/// What becomes of an intake without proof that matches a chart
/// (`INTAKE_UNVERIFIED_INTAKES`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Unverified {
    /// It waits as a proposed link that staff confirm (the default).
    #[default]
    Review,
    /// It is filed in the matched chart, as verified ones are.
    Link,
}

/// `intake serve`'s remote EMR options. Without `INTAKE_EMR_URL` the embedded
/// store is the EMR.
#[derive(Clone, Default, clap::Args)]
pub struct RemoteArgs {
    /// Remote EMR: the FHIR R4 base URL (`https://emr.example.org/fhir/R4`). Unset:
    /// the embedded store is the EMR.
    #[arg(long, env = "INTAKE_EMR_URL")]
    pub emr_url: Option<String>,
    /// Remote EMR: a static bearer token sent with every request.
    #[arg(long, env = "INTAKE_EMR_TOKEN", hide_env_values = true)]
    pub emr_token: Option<String>,
    /// Remote EMR, SMART backend services: our client id at the EMR.
    #[arg(long, env = "INTAKE_EMR_CLIENT_ID")]
    pub emr_client_id: Option<String>,
    /// Remote EMR, SMART backend services: the PKCS#8 PEM file of the private key
    /// (EC P-384 signs ES384, RSA signs RS384) whose public key the EMR has.
    #[arg(long, env = "INTAKE_EMR_PRIVATE_KEY")]
    pub emr_private_key: Option<std::path::PathBuf>,
    /// Remote EMR, SMART backend services: the key's id (`kid`), if the EMR wants it.
    #[arg(long, env = "INTAKE_EMR_KEY_ID")]
    pub emr_key_id: Option<String>,
    /// Remote EMR, SMART backend services: the token endpoint. Default: the
    /// `token_endpoint` of `{INTAKE_EMR_URL}/.well-known/smart-configuration`.
    #[arg(long, env = "INTAKE_EMR_TOKEN_URL")]
    pub emr_token_url: Option<String>,
    /// Remote EMR, SMART backend services: the scopes asked for.
    #[arg(long, env = "INTAKE_EMR_SCOPE")]
    pub emr_scope: Option<String>,
    /// Remote EMR: how long one request may take, in milliseconds. Default 10000.
    #[arg(long, env = "INTAKE_EMR_TIMEOUT_MS")]
    pub emr_timeout_ms: Option<u64>,
    /// Remote EMR: how many patients it holds, for matching's prior. Default: its
    /// answer to `Patient?_summary=count`, asked again every 10 minutes.
    #[arg(long, env = "INTAKE_EMR_PATIENTS")]
    pub emr_patients: Option<u64>,
}

impl std::fmt::Debug for RemoteArgs {
    // The token stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteArgs")
            .field("emr_url", &self.emr_url)
            .field("emr_token", &self.emr_token.as_ref().map(|_| "[redacted]"))
            .field("emr_client_id", &self.emr_client_id)
            .field("emr_private_key", &self.emr_private_key)
            .field("emr_key_id", &self.emr_key_id)
            .field("emr_token_url", &self.emr_token_url)
            .field("emr_scope", &self.emr_scope)
            .field("emr_timeout_ms", &self.emr_timeout_ms)
            .field("emr_patients", &self.emr_patients)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        config: super::Config,
    }

    fn parse(args: &[&str]) -> super::Config {
        Cli::try_parse_from(std::iter::once("intake").chain(args.iter().copied()))
            .map(|cli| cli.config)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn matching_settings_start_from_the_engines_defaults() {
        let defaults = matching::Config::default();
        assert_eq!(parse(&[]).matching().unwrap(), defaults);
        let set = parse(&[
            "--match-certain",
            "0.9999",
            "--match-block-cap",
            "50",
            "--match-country-code",
            "44",
        ])
        .matching()
        .unwrap();
        assert!((set.thresholds.certain - matching::log_odds(0.9999)).abs() < 1e-12);
        assert!((set.thresholds.probabilities()[0] - 0.9999).abs() < 1e-12);
        assert_eq!(set.thresholds.probable, defaults.thresholds.probable);
        assert_eq!(set.block_cap, 50);
        assert_eq!(set.default_country, "44");
    }

    #[test]
    fn matching_settings_that_make_no_sense_are_refused() {
        for args in [
            &["--match-certain", "0.5", "--match-probable", "0.7"][..],
            &["--match-possible", "0.95"],
            &["--match-certain", "1"],
            &["--match-possible", "0"],
            &["--match-certain", "12.5"],
            &["--match-block-cap", "0"],
            &["--match-country-code", "+44"],
            &["--match-country-code", ""],
        ] {
            assert!(parse(args).matching().is_err(), "{args:?}");
        }
    }
}
