//! The remote EMR: any FHIR R4 server, by base URL.

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
