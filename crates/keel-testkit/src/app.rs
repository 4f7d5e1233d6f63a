//! A Keel server running inside the test process, reached over real HTTP.

use std::time::{Duration, Instant};

use axum::Router;
use keel::config::Source;
use keel::http::AppState;
use keel::runtime::RuntimeError;
use keel::{Server, Settings};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::TestDb;

pub struct TestAppBuilder {
    db: TestDb,
    env: Vec<(String, String)>,
    routes: Option<Router<AppState>>,
    wait_ready: bool,
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
        let dir = self
            .db
            .dir()
            .map(|d| d.to_path_buf())
            .unwrap_or_else(std::env::temp_dir);
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
        let mut server = Server::new(settings);
        if let Some(routes) = self.routes {
            server = server.routes(routes);
        }
        let handle = tokio::spawn(server.run_on(listener, async {
            let _ = stopped.await;
        }));
        let app = TestApp {
            base_url: format!("http://{addr}"),
            client: reqwest::Client::new(),
            stop: Some(stop),
            handle,
            db: self.db,
        };
        if self.wait_ready && !app.ready_within(Duration::from_secs(30)).await {
            return Err("the app did not turn ready within 30 s".into());
        }
        Ok(app)
    }
}

pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    pub db: TestDb,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), RuntimeError>>,
}

impl TestApp {
    pub fn builder(db: TestDb) -> TestAppBuilder {
        TestAppBuilder {
            db,
            env: Vec::new(),
            routes: None,
            wait_ready: true,
        }
    }

    /// An app with default settings on `db`, ready.
    pub async fn spawn(db: TestDb) -> TestApp {
        Self::builder(db).spawn().await
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
