//! Start-up order and graceful shutdown of a Keel process.
//!
//! 1. bind the listener and serve health at once (readiness 503 while starting);
//! 2. migrate (or, with `MIGRATE_ON_START=false`, wait until another process has);
//! 3. turn ready;
//! 4. on SIGTERM/SIGINT: readiness 503, wait `SHUTDOWN_DRAIN_SECONDS`, stop accepting, let
//!    in-flight requests finish within `SHUTDOWN_GRACE_SECONDS`, send the queued error reports
//!    (at most 2 s), return.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use utoipa_axum::router::OpenApiRouter;

use crate::clock::Clock;
use crate::config::Settings;
use crate::http::{self, AppDataMap, AppState, Phase};
use crate::jobs::{Registry, Worker, WorkerConfig};
use crate::store::migrate::{AppMigrations, MigrateError, Migrator, State};
use crate::store::{Db, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("migration failed: {0}")]
    Migrate(#[from] MigrateError),
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Services(#[from] crate::services::ServicesError),
}

/// A Keel process being built: settings, plus what the application adds (routes, job handlers,
/// its own state and migrations). `keel_cli::run` takes a function that builds one, so a custom
/// binary keeps every `keel` subcommand.
pub struct Server {
    settings: Arc<Settings>,
    extra: Option<OpenApiRouter<AppState>>,
    registry: Registry,
    clock: Clock,
    app_data: AppDataMap,
    migrations: AppMigrations,
}

impl Server {
    /// A process with Keel's own routes, jobs and migrations only.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings: Arc::new(settings),
            extra: None,
            registry: Registry::with_builtins(),
            clock: Clock::system(),
            app_data: AppDataMap::default(),
            migrations: AppMigrations::none(),
        }
    }

    /// The settings the process runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Adds a value of the application's own (a client, a cache, its settings): handlers reach
    /// it with [`AppData<T>`](crate::http::AppData), one value per type.
    pub fn app_data<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.app_data.insert(value);
        self
    }

    /// The application's own migrations: applied after Keel's by `keel migrate up` and, with
    /// `MIGRATE_ON_START`, at start-up, and recorded in `keel_app_migrations`.
    pub fn migrations(mut self, migrations: AppMigrations) -> Self {
        self.migrations = migrations;
        self
    }

    /// Every job kind this server's processes run: the built-in kinds, Keel's own, the
    /// application's Rust handlers and the HTTP kinds of `keel.toml`. An enqueue of any other
    /// kind is refused.
    pub fn job_kinds(&self) -> std::collections::BTreeSet<String> {
        crate::kinds::declared_kinds(&self.settings, &self.registry)
    }

    /// The application's migrations given to [`Server::migrations`] (none by default).
    pub fn app_migrations(&self) -> &AppMigrations {
        &self.migrations
    }

    /// Job handlers (the built-in kinds are registered already; add the application's).
    pub fn jobs(mut self, configure: impl FnOnce(&mut Registry)) -> Self {
        configure(&mut self.registry);
        self
    }

    /// The clock every part of the process reads (tests move it).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Adds application routes, served by the `api` and `all` roles behind the full edge stack.
    /// They are not in `/openapi.json`; [`Server::documented_routes`] adds routes that are.
    pub fn routes(self, routes: Router<AppState>) -> Self {
        self.documented_routes(OpenApiRouter::from(routes))
    }

    /// Adds application routes like [`Server::routes`], and documents them: each handler
    /// registered with `utoipa_axum::routes!` and annotated with `#[utoipa::path]` appears in
    /// `/openapi.json` beside Keel's own operations, with the schemas it names. A 4xx or 5xx
    /// answer documented without a body refers to Keel's problem response of that status.
    ///
    /// ```no_run
    /// use axum::Json;
    /// use keel::http::AppState;
    /// use utoipa_axum::{router::OpenApiRouter, routes};
    ///
    /// /// Says hello.
    /// #[utoipa::path(get, path = "/v1/hello", tag = "Hello",
    ///     responses((status = 200, description = "A greeting.", body = String)))]
    /// async fn hello() -> Json<&'static str> {
    ///     Json("hello")
    /// }
    ///
    /// # fn settings() -> keel::Settings { unimplemented!() }
    /// let server = keel::Server::new(settings())
    ///     .documented_routes(OpenApiRouter::<AppState>::new().routes(routes!(hello)));
    /// ```
    pub fn documented_routes(mut self, routes: OpenApiRouter<AppState>) -> Self {
        self.extra = Some(match self.extra.take() {
            Some(existing) => existing.merge(routes),
            None => routes,
        });
        self
    }

    /// Binds `HOST:PORT` and runs until SIGTERM or SIGINT.
    pub async fn run(self) -> Result<(), RuntimeError> {
        let shutdown = shutdown_signal();
        let addr = SocketAddr::new(self.settings.http.host, self.settings.http.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| RuntimeError::Bind { addr, source })?;
        self.run_on(listener, shutdown).await
    }

    /// Runs on `listener` until `shutdown` completes.
    pub async fn run_on(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), RuntimeError> {
        let settings = self.settings;
        crate::telemetry::sentry::init(&settings.telemetry, &settings.role.report_tags());
        let db = Db::connect_lazy(&settings.database)?;
        let state = AppState::assemble(
            settings.clone(),
            db.clone(),
            self.clock,
            self.registry,
            self.app_data,
        )?;
        let declared: std::collections::BTreeSet<String> =
            state.handlers.kinds().map(str::to_string).collect();
        for message in crate::schedule::decl::undeclared_kinds(&settings.file.schedules, &declared)
        {
            tracing::error!("{message}; its firings will fail");
        }
        let router = http::router(state.clone(), self.extra);
        let addr = listener.local_addr().map_err(RuntimeError::Serve)?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let (closing_tx, closing_rx) = watch::channel(false);
        let server = tokio::spawn(http::serve::serve_draining(
            listener, router, closing_rx, stop_rx,
        ));
        tracing::info!(
            %addr,
            role = settings.role.as_str(),
            engine = ?db.engine(),
            env = settings.app_env.as_str(),
            version = env!("CARGO_PKG_VERSION"),
            "keel listening"
        );

        if settings.role.serves_api() {
            state.verifier.start();
        }
        tokio::pin!(shutdown);
        let started = tokio::select! {
            result = prepare(&state, &self.migrations) => Some(result),
            () = &mut shutdown => None,
        };
        let (jobs_stop, jobs_stopped) = watch::channel(false);
        let mut background = Vec::new();
        match started {
            Some(Ok(())) => {
                if settings.role.runs_jobs() {
                    background = start_jobs(&state, jobs_stopped);
                    reseal_after_rotation(&state).await;
                }
                state.readiness.set(Phase::Ready);
                tracing::info!("keel ready");
                shutdown.await;
            }
            Some(Err(e)) => {
                let _ = stop_tx.send(true);
                let _ = server.await;
                db.close().await;
                return Err(e);
            }
            None => {}
        }

        tracing::info!("shutting down: readiness is now 503");
        // Answers carry `Connection: close` from here on, the first 503 of readiness included.
        let _ = closing_tx.send(true);
        state.readiness.set(Phase::Draining);
        let _ = jobs_stop.send(true);
        tokio::time::sleep(settings.shutdown.drain).await;
        let _ = stop_tx.send(true);
        let grace = settings.shutdown.grace;
        let http = async {
            match tokio::time::timeout(grace, server).await {
                Ok(Ok(())) => tracing::info!("in-flight requests finished"),
                Ok(Err(e)) => tracing::error!(error = %e, "server task failed"),
                Err(_) => tracing::warn!(
                    grace_s = grace.as_secs(),
                    "requests still running after the grace period were cut off"
                ),
            }
        };
        let jobs = async {
            for task in background {
                // The worker bounds itself by the grace period; a little slack covers releasing.
                if tokio::time::timeout(grace + Duration::from_secs(5), task)
                    .await
                    .is_err()
                {
                    tracing::warn!("background task did not stop in time");
                }
            }
        };
        tokio::join!(http, jobs);
        state.verifier.stop();
        db.close().await;
        // Error reports queued until now (the last requests' and jobs') are sent before exiting.
        if crate::telemetry::sentry::enabled() {
            tracing::info!("sending the queued error reports");
            if !crate::telemetry::sentry::flush(crate::telemetry::sentry::FLUSH_TIMEOUT).await {
                tracing::warn!("error reports still queued after the flush timeout were dropped");
            }
        }
        tracing::info!("keel stopped");
        Ok(())
    }
}

/// After a key rotation (more than one data key), payloads sealed under an older key are
/// re-sealed under the newest by a job; the unique key keeps it to one at a time.
async fn reseal_after_rotation(state: &AppState) {
    if state.billing.sealer().key_ids().len() < 2 {
        return;
    }
    let spec = crate::jobs::JobSpec::new(crate::billing::jobs::RESEAL_KIND, serde_json::json!({}))
        .unique_key(crate::billing::jobs::RESEAL_KIND);
    if let Err(e) = state.queue.enqueue(spec).await {
        tracing::warn!(error = %e, "could not enqueue the re-seal job");
    }
}

/// Starts the worker and the scheduler; returns their tasks.
fn start_jobs(state: &AppState, stop: watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
    let registry = Registry::clone(&state.handlers);
    let config = WorkerConfig::from_settings(
        &state.settings.jobs,
        &state.settings.file.queues,
        state.settings.shutdown.grace,
    );
    let worker = Worker::on_pools(
        &state.db,
        &state.settings.database,
        state.clock.clone(),
        state.flags.clone(),
        registry.clone(),
        config.clone(),
    )
    .unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot build the worker's pools; sharing the main pool");
        Worker::new(
            state.db.clone(),
            state.clock.clone(),
            state.flags.clone(),
            registry,
            config,
        )
    });
    let mut tasks = vec![
        worker.spawn(stop.clone()),
        state.scheduler.clone().spawn(stop.clone()),
    ];
    if state.settings.jobs.worker_enabled {
        if let Some(dispatcher) = crate::events::Dispatcher::from_services(&state.services) {
            tasks.push(dispatcher.spawn(stop));
        }
    }
    tasks
}

/// Migrates (Keel's migrations, then the application's), or waits for another process to have.
async fn prepare(state: &AppState, app: &AppMigrations) -> Result<(), RuntimeError> {
    let settings = &state.settings;
    let (url, pooler) = settings.database.migration_target();
    let timeout = settings.database.migration_timeout;
    let mut migrators = vec![Migrator::new(url, timeout)?.with_pooler(pooler)];
    if !app.is_empty() {
        migrators.push(Migrator::for_app(url, timeout, app)?.with_pooler(pooler));
    }
    state.readiness.set(Phase::Migrating);
    if settings.database.migrate_on_start {
        for migrator in &migrators {
            let applied = migrator.up(false).await?;
            tracing::info!(
                history = migrator.history(),
                applied = applied.len(),
                "migrations up to date"
            );
        }
        return Ok(());
    }
    for migrator in &migrators {
        wait_for(migrator).await?;
    }
    Ok(())
}

/// Waits until every migration `migrator` knows is applied (by another process).
async fn wait_for(migrator: &Migrator) -> Result<(), RuntimeError> {
    loop {
        match migrator.status().await {
            Ok(status) if status.iter().all(|s| s.state == State::Applied) => return Ok(()),
            Ok(status) => {
                if let Some(bad) = status
                    .iter()
                    .find(|s| matches!(s.state, State::Modified | State::Unknown))
                {
                    let (version, name) = (bad.version, bad.name.clone());
                    return Err(RuntimeError::Migrate(if bad.state == State::Modified {
                        MigrateError::Modified { version, name }
                    } else {
                        MigrateError::Unknown { version, name }
                    }));
                }
                tracing::info!("waiting for migrations to be applied (MIGRATE_ON_START=false)");
            }
            Err(e) => tracing::warn!(error = %e, "cannot read migration state yet"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Completes on SIGTERM or SIGINT. The handlers are installed when this is called, not when the
/// future is first polled: a signal that arrives in between (the port is open and answering before
/// the caller awaits it) ends the process gracefully instead of by the signal's default action.
/// Call it inside a Tokio runtime, before binding.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let interrupt = signal(SignalKind::interrupt()).ok();
        let terminate = signal(SignalKind::terminate()).ok();
        async move {
            let interrupt = async {
                match interrupt {
                    Some(mut s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            let terminate = async {
                match terminate {
                    Some(mut s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = interrupt => tracing::info!("SIGINT received"),
                _ = terminate => tracing::info!("SIGTERM received"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("SIGINT received");
        } else {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::time::Duration;

    /// A SIGTERM that arrives after `shutdown_signal()` is called but before its future is first
    /// polled completes the future; with handlers installed only on the first poll, the signal's
    /// default action would end this test process instead.
    #[tokio::test]
    async fn a_signal_before_the_first_poll_is_not_lost() {
        let shutdown = super::shutdown_signal();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(30), shutdown)
            .await
            .expect("the SIGTERM sent before the first poll ends the wait");
    }
}
