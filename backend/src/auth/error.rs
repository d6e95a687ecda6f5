//! How authentication fails (answered as an `OperationOutcome` by
//! `api::error`, like every other API error). The messages are fixed: none says whether an account exists.

/// The one message of every failed login, whatever failed.
pub(crate) const LOGIN_FAILED: &str = "The username or password is not correct";

/// Everything authentication can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No session or token, or one that has expired (401).
    #[error("not signed in")]
    Unauthenticated,
    /// Wrong username or password, or a disabled account (401, [`LOGIN_FAILED`]).
    #[error("login failed")]
    LoginFailed,
    /// Signed in, but the role does not allow this (403).
    #[error("forbidden for this role")]
    Forbidden,
    /// The CSRF token or the Origin did not match (403).
    #[error("cross-site request refused")]
    CsrfRefused,
    /// Too many failures for the name or the address (429).
    #[error("too many attempts")]
    Throttled {
        /// Seconds until the next attempt can succeed.
        retry_after_secs: u64,
    },
    /// The database did not answer.
    #[error("database unavailable: {0}")]
    Database(#[from] sqlx::Error),
    /// Something that should not fail did (the random source, the hasher).
    #[error("internal error: {0}")]
    Internal(&'static str),
}
