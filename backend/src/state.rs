//! [`AppState`]: what every handler can reach.

use std::ops::Deref;
use std::sync::Arc;

use sqlx::SqlitePool;

use crate::clock::Clock;
use crate::emr::Emr;
use crate::intake::Intakes;
use crate::static_files::StaticFiles;
use crate::store::Store;
use crate::store::patients::PatientIndex;

/// What every handler can reach. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState(Arc<App>);

/// The parts behind [`AppState`].
#[derive(Debug)]
pub struct App {
    /// The embedded database.
    pub db: SqlitePool,
    /// The current time.
    pub clock: Arc<dyn Clock>,
    /// The built web app.
    pub static_files: StaticFiles,
    /// The matching index over the stored Patients.
    pub patients: Arc<PatientIndex>,
    /// The embedded FHIR store.
    pub store: Store,
    /// The EMR intakes are delivered to.
    pub emr: Arc<dyn Emr>,
    /// The intake pipeline.
    pub intakes: Intakes,
    /// Stored Questionnaires, parsed, for checking and extracting responses.
    pub forms: crate::questionnaires::FormCache,
    /// What strangers may do (issue 21): unverified intakes, rate limits.
    pub guard: crate::config::Guard,
    /// The rate limits' buckets.
    pub limiter: crate::guard::RateLimiter,
    /// The largest body a caller without credentials may send to `/fhir`
    /// (`$validate`): the `/api` limit, not the 4 MiB Questionnaires need.
    pub public_body_bytes: usize,
    /// Where patients reach the app (`INTAKE_PUBLIC_URL`), for invitation links.
    pub public_url: Option<String>,
}

impl AppState {
    /// The state over these parts.
    pub fn new(app: App) -> Self {
        Self(Arc::new(app))
    }
}

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}
