//! A Keel server running inside the test process, reached over real HTTP, with its services,
//! its clock and its jobs at hand.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use keel::clock::Clock;
use keel::config::Source;
use keel::http::AppState;
use keel::jobs::{JobFilter, JobState, Registry, WorkerConfig};
use keel::runtime::RuntimeError;
use keel::services::Services;
use keel::store::Db;
use keel::{Server, Settings};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::TestDb;

/// How long [`TestApp::run_pending_jobs`] waits for the app's worker.
const JOBS_DEADLINE: Duration = Duration::from_secs(30);

/// What a test adds to the app's server, as an application's build function does.
type Assemble = Box<dyn FnOnce(Server) -> Server + Send>;
/// Registers an application's job handlers.
type ConfigureJobs = Box<dyn FnOnce(&mut Registry) + Send>;

pub struct TestAppBuilder {
    db: TestDb,
    env: Vec<(String, String)>,
    routes: Option<Router<AppState>>,
    assemble: Option<Assemble>,
    /// Registers the application's job handlers.
    jobs: Option<ConfigureJobs>,
    wait_ready: bool,
    /// The settings' directory when a `keel.toml` was given.
    config_dir: Option<tempfile::TempDir>,
}

impl TestAppBuilder {
    /// Sets one environment variable of the app (nothing touches the process environment).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Application routes, as a library user would add them.
    pub fn routes(mut self, routes: Router<AppState>) -> Self {
        self.routes = Some(routes);
        self
    }

    /// Adds to the app's server what an application's build function adds (state, job
    /// handlers, migrations, routes), for testing an application in-process.
    pub fn server(mut self, assemble: impl FnOnce(Server) -> Server + Send + 'static) -> Self {
        self.assemble = Some(Box::new(assemble));
        self
    }

    /// The application's job handlers, as `Server::jobs` registers them.
    pub fn jobs(mut self, configure: impl FnOnce(&mut Registry) + Send + 'static) -> Self {
        self.jobs = Some(Box::new(configure));
        self
    }

    /// Writes `text` as the app's `keel.toml`, in a directory of the app's own.
    pub fn keel_toml(mut self, text: &str) -> Self {
        let dir = match self.config_dir.take() {
            Some(dir) => dir,
            None => match tempfile::tempdir() {
                Ok(dir) => dir,
                Err(e) => panic!("cannot make a temporary directory: {e}"),
            },
        };
        if let Err(e) = std::fs::write(dir.path().join("keel.toml"), text) {
            panic!("cannot write keel.toml: {e}");
        }
        self.config_dir = Some(dir);
        self
    }

    /// Return as soon as the server listens, without waiting for readiness.
    pub fn no_wait(mut self) -> Self {
        self.wait_ready = false;
        self
    }

    /// The app's settings; panics when they are invalid (a test harness).
    pub fn settings(&self) -> Settings {
        match self.try_settings() {
            Ok(settings) => settings,
            Err(e) => panic!("test settings are invalid: {e}"),
        }
    }

    pub fn try_settings(&self) -> Result<Settings, String> {
        let mut pairs = vec![
            ("DATABASE_URL".to_string(), self.db.url().to_string()),
            ("PORT".to_string(), "0".to_string()),
            ("LOG_LEVEL".to_string(), "warn".to_string()),
        ];
        pairs.extend(self.env.iter().cloned());
        let dir = match (&self.config_dir, self.db.dir()) {
            (Some(config), _) => config.path().to_path_buf(),
            (None, Some(db)) => db.to_path_buf(),
            (None, None) => std::env::temp_dir(),
        };
        Settings::load(&Source::from_pairs(pairs, dir)).map_err(|e| e.to_string())
    }

    /// Starts the app; panics when it cannot (a test harness).
    pub async fn spawn(self) -> TestApp {
        match self.try_spawn().await {
            Ok(app) => app,
            Err(e) => panic!("cannot start the test app: {e}"),
        }
    }

    /// Starts the app, or says why it cannot.
    pub async fn try_spawn(self) -> Result<TestApp, String> {
        let settings = self.try_settings()?;
        let listener = tokio::net::TcpListener::bind((settings.http.host, 0))
            .await
            .map_err(|e| format!("cannot bind a port: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (stop, stopped) = oneshot::channel::<()>();
        let clock = Clock::system();
        let db = Db::connect_lazy(&settings.database).map_err(|e| e.to_string())?;
        let services = Services::new(Arc::new(settings.clone()), db, clock.clone())
            .map_err(|e| e.to_string())?;
        let mut server = Server::new(settings).clock(clock);
        if let Some(routes) = self.routes {
            server = server.routes(routes);
        }
        if let Some(assemble) = self.assemble {
            server = assemble(server);
        }
        if let Some(configure) = self.jobs {
            server = server.jobs(configure);
        }
        let handle = tokio::spawn(server.run_on(listener, async {
            let _ = stopped.await;
        }));
        let app = TestApp {
            services,
            config_dir: self.config_dir,
            base_url: format!("http://{addr}"),
            client: reqwest::Client::new(),
            stop: Some(stop),
            handle,
            db: self.db,
            env: self.env,
        };
        if self.wait_ready && !app.ready_within(Duration::from_secs(30)).await {
            return Err("the app did not turn ready within 30 s".into());
        }
        Ok(app)
    }
}

pub struct TestApp {
    /// The app's services over its database and clock (as a second process of the same
    /// deployment would compose them: the same data, caches of its own).
    services: Services,
    /// Holds `keel.toml`, when one was given.
    config_dir: Option<tempfile::TempDir>,
    pub base_url: String,
    pub client: reqwest::Client,
    pub db: TestDb,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), RuntimeError>>,
    /// The variables set with [`TestAppBuilder::env`].
    env: Vec<(String, String)>,
}

impl TestApp {
    pub fn builder(db: TestDb) -> TestAppBuilder {
        TestAppBuilder {
            db,
            env: Vec::new(),
            routes: None,
            assemble: None,
            jobs: None,
            wait_ready: true,
            config_dir: None,
        }
    }

    /// An app with default settings on `db`, ready.
    pub async fn spawn(db: TestDb) -> TestApp {
        Self::builder(db).spawn().await
    }

    /// The composition root over the app's database: settings, store, clock, flags, queue,
    /// scheduler, users, billing and limiter.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The clock the app reads; [`Clock::advance`] moves it for the app as well.
    pub fn clock(&self) -> &Clock {
        &self.services.clock
    }

    /// The directory of the app's `keel.toml`, when one was given.
    pub fn config_dir(&self) -> Option<&std::path::Path> {
        self.config_dir.as_ref().map(|d| d.path())
    }

    /// Runs the jobs that are due by the app's clock now: returns once the app's worker has
    /// finished every job that was running or due (within 30 s, or the test fails). The app must
    /// run jobs (`PROCESS_ROLE` `all` or `worker`, the worker enabled).
    pub async fn run_pending_jobs(&self) {
        let settings = &self.services.settings;
        assert!(
            settings.role.runs_jobs() && settings.jobs.worker_enabled,
            "the test app runs no worker (PROCESS_ROLE={})",
            settings.role.as_str()
        );
        crate::eventually("the pending jobs have run", JOBS_DEADLINE, || async {
            self.pending_jobs().await.is_empty()
        })
        .await;
    }

    /// The ids of the jobs running now or due by the app's clock, on the queues its worker serves.
    pub async fn pending_jobs(&self) -> Vec<i64> {
        let filter = JobFilter {
            states: vec![
                JobState::Scheduled,
                JobState::Available,
                JobState::Retryable,
                JobState::Running,
            ],
            limit: 10_000,
            ..Default::default()
        };
        let rows = match self.services.db.list_jobs(&filter).await {
            Ok(rows) => rows,
            Err(e) => panic!("cannot list the jobs: {e}"),
        };
        let now = self.clock().now();
        let settings = &self.services.settings;
        let served = WorkerConfig::from_settings(
            &settings.jobs,
            &settings.file.queues,
            settings.shutdown.grace,
        )
        .queues;
        rows.into_iter()
            .filter(|job| served.iter().any(|(queue, _)| *queue == job.queue))
            .filter(|job| job.state == JobState::Running || job.run_at <= now)
            .map(|job| job.id)
            .collect()
    }

    /// The `ADMIN_TOKEN` the app was given, if any.
    pub fn admin_token(&self) -> Option<&str> {
        self.var("ADMIN_TOKEN")
    }

    /// The value the app was given for variable `name`, if any (the last one set wins).
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The values of the app's token, secret and key variables: no answer may quote them.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.env
            .iter()
            .filter(|(name, value)| {
                ["TOKEN", "SECRET", "KEY"].iter().any(|w| name.contains(w)) && value.len() >= 8
            })
            .map(|(_, value)| value.as_str())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `GET path`; panics when no answer comes (the test fails with the reason).
    pub async fn get(&self, path: &str) -> reqwest::Response {
        match self.client.get(self.url(path)).send().await {
            Ok(response) => response,
            Err(e) => panic!("GET {path}: {e}"),
        }
    }

    /// `POST path` with a JSON body; panics when no answer comes.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        match self.client.post(self.url(path)).json(body).send().await {
            Ok(response) => response,
            Err(e) => panic!("POST {path}: {e}"),
        }
    }

    pub async fn wait_ready(&self, limit: Duration) {
        assert!(
            self.ready_within(limit).await,
            "app not ready within {limit:?}"
        );
    }

    /// Whether `/health/ready` answers 200 within `limit`.
    pub async fn ready_within(&self, limit: Duration) -> bool {
        let started = Instant::now();
        loop {
            if let Ok(r) = self.client.get(self.url("/health/ready")).send().await {
                if r.status() == 200 {
                    return true;
                }
            }
            if started.elapsed() >= limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Starts a graceful shutdown and returns without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shuts down gracefully and returns how the server ended.
    pub async fn shutdown(mut self) -> Result<(), RuntimeError> {
        self.begin_shutdown();
        self.finished().await
    }

    /// Waits for the server to end on its own (after [`TestApp::begin_shutdown`] or an error).
    pub async fn finished(&mut self) -> Result<(), RuntimeError> {
        match (&mut self.handle).await {
            Ok(result) => result,
            // The server task panicked or was cancelled: an error like any other end.
            Err(e) => Err(RuntimeError::Serve(std::io::Error::other(e))),
        }
    }
}
