//! The application: opens the database, wires the state and the router, binds.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context as _;
use axum::Router;
use sqlx::SqlitePool;
use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::emr::Emr;
use crate::emr::embedded::Embedded;
use crate::emr::remote::Remote;
use crate::intake::Intakes;
use crate::state::{App, AppState};
use crate::static_files::StaticFiles;
use crate::store::Store;
use crate::store::patients::PatientIndex;
use crate::{api, db};

/// A server bound to its address, ready to run.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
    db: SqlitePool,
    intakes: Intakes,
    patients: Arc<PatientIndex>,
    /// The matching model's background learner ([`PatientIndex::start_learning`]).
    learner: tokio::task::JoinHandle<()>,
    guard: crate::config::Guard,
    data: std::path::PathBuf,
}

impl Application {
    /// Opens the database (applying migrations), builds the router and binds.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        Self::build_with_matching(config, config.matching()?).await
    }

    /// [`Application::build`] with the patient matching engine's settings (grade
    /// thresholds, blocking cap). Builds the matching index from the stored Patients.
    pub async fn build_with_matching(
        config: &Config,
        matching: matching::Config,
    ) -> anyhow::Result<Self> {
        let guard = config.guard()?;
        let public_url = config.public_url()?;
        let db = db::open(&config.data).await?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let patients = Arc::new(
            PatientIndex::load(&db, matching.clone())
                .await
                .context("building the patient index")?,
        );
        crate::questionnaires::ensure_registration(&db, clock.as_ref())
            .await
            .context("storing the built-in registration form")?;
        let store = Store::new(db.clone(), clock.clone(), patients.clone());
        let indexed = store
            .index_missing()
            .await
            .context("indexing stored resources for search")?;
        if indexed > 0 {
            tracing::info!(resources = indexed, "search index brought up to date");
        }
        let country = matching.default_country.clone();
        // A remote FHIR R4 server when INTAKE_EMR_URL is set, else our own store.
        let emr: Arc<dyn Emr> = match Remote::from_args(&config.emr, matching)? {
            Some(remote) => {
                tracing::info!("EMR: a remote FHIR R4 server");
                Arc::new(remote)
            }
            None => Arc::new(Embedded::new(store.clone())),
        };
        let intakes = Intakes::start(
            db.clone(),
            store.clone(),
            emr.clone(),
            clock.clone(),
            config.delivery()?,
            country,
        )
        .await
        .context("starting the intake pipeline")?;
        let static_files = StaticFiles::new(&config.dist);
        if !static_files.is_built() {
            tracing::warn!(dist = %config.dist.display(), "web app not built; only the API is served");
        }
        let state = AppState::new(App {
            db: db.clone(),
            clock,
            static_files,
            patients: patients.clone(),
            store,
            emr,
            intakes: intakes.clone(),
            forms: crate::questionnaires::FormCache::default(),
            guard: guard.clone(),
            limiter: crate::guard::RateLimiter::default(),
            public_body_bytes: config.max_body_bytes,
            public_url,
        });
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let learner = Arc::clone(&patients).start_learning(db.clone());
        Ok(Self {
            listener,
            router: api::router(state, config.max_body_bytes, guard.body_timeout),
            db,
            intakes,
            patients,
            learner,
            guard,
            data: config.data.clone(),
        })
    }

    /// The database (tests arrange what the API cannot: a token, a user).
    pub fn db(&self) -> &SqlitePool {
        &self.db
    }

    /// The address actually bound (the port is chosen by the OS for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight and
    /// closes the database cleanly.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // With the peer's address (and the client's behind a trusted proxy), for
        // the rate and login limits and the audit trail; `/fhir/` read as `/fhir`
        // before the router sees it (`guard::serve`).
        // The audit trail's head, outside the database, every minute (and at the
        // end), so rows cut from its end show (issue 21).
        let checkpoints = {
            let (db, data) = (self.db.clone(), self.data.clone());
            tokio::spawn(async move {
                let mut last = None;
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    match crate::audit::checkpoint(&db, &data, SystemTime::now(), last.as_ref())
                        .await
                    {
                        Ok(Some(written)) => last = Some(written),
                        Ok(None) => {}
                        Err(error) => tracing::error!(error = %error, "audit checkpoint failed"),
                    }
                }
            })
        };
        crate::guard::serve(self.listener, self.router, &self.guard, shutdown).await;
        checkpoints.abort();
        // The delivery in flight finishes; what is left stays in the outbox for
        // the next start.
        self.intakes.stop().await;
        // What the queries taught the matching model is kept for the next start.
        self.learner.abort();
        if let Err(e) = self.patients.save(&self.db).await {
            tracing::warn!(error = %e, "storing the matching model's learning failed");
        }
        crate::audit::checkpoint(&self.db, &self.data, SystemTime::now(), None)
            .await
            .context("writing the audit checkpoint at shutdown")?;
        self.db.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}
