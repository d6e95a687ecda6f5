//! The application: state, router and listener.

use std::future::Future;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use sqlx::SqlitePool;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::emr::Emr;
use crate::emr::embedded::Embedded;
use crate::emr::remote::Remote;
use crate::intake::Intakes;
use crate::patients::PatientIndex;
use crate::static_files::StaticFiles;
use crate::store::Store;
use crate::{api, db, http, static_files};

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

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

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
        let state = AppState(Arc::new(App {
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
        }));
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let learner = Arc::clone(&patients).start_learning(db.clone());
        Ok(Self {
            listener,
            router: router(state, config.max_body_bytes, guard.body_timeout),
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

/// `/fhir/` is the FHIR base as much as `/fhir`: a client that joins paths to
/// its base URL with the slash (`POST /fhir/` for a transaction) reaches it.
pub(crate) fn fhir_base_with_slash<B>(
    mut request: axum::http::Request<B>,
) -> axum::http::Request<B> {
    if request.uri().path() == "/fhir/" {
        let target = match request.uri().query() {
            Some(q) => format!("/fhir?{q}"),
            None => "/fhir".to_owned(),
        };
        let mut parts = request.uri().clone().into_parts();
        if let Ok(target) = target.parse() {
            parts.path_and_query = Some(target);
            if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
    }
    request
}

/// The whole HTTP surface.
pub fn router(state: AppState, max_body_bytes: usize, body_timeout: std::time::Duration) -> Router {
    // Who may call what, checked once matched (the policy reads the route's pattern).
    let policy = axum::middleware::from_fn_with_state(state.clone(), crate::auth::policy::enforce);
    let mut router = Router::new()
        .nest(
            "/api",
            api::router()
                .route_layer(policy.clone())
                .layer(DefaultBodyLimit::max(max_body_bytes)),
        )
        .nest("/fhir", api::fhir_router().route_layer(policy))
        .fallback(static_files::serve)
        .with_state(state)
        .layer(CompressionLayer::new());
    for layer in http::security_headers() {
        router = router.layer(layer);
    }
    // A body trickled in slower than this fails its read (400), freeing the
    // connection (issue 21).
    let router = router.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        body_timeout,
    ));
    // Inside the trace layer, so a panic's 500 is logged like any answer.
    let router = router.layer(http::catch_panic());
    // Spans carry the method and the route pattern, never the raw URI: paths and
    // queries may hold identifiers or tokens.
    router.layer(
        TraceLayer::new_for_http()
            .make_span_with(|request: &Request<_>| {
                let route = request
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map_or("(static)", |p| p.as_str());
                tracing::info_span!("http", http.method = %request.method(), http.route = route)
            })
            .on_response(DefaultOnResponse::new().level(Level::INFO)),
    )
}
