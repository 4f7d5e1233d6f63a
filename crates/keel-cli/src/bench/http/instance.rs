//! An in-process Keel for the HTTP benchmark: SQLite in a temporary directory, settings from
//! explicit pairs (nothing is read from the process environment), served on a free local port.

use std::time::{Duration, Instant};

use axum::Router;
use keel::config::Source;
use keel::http::AppState;
use keel::runtime::RuntimeError;
use keel::{Server, Settings};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long the instance may take to turn ready.
const READY_WITHIN: Duration = Duration::from_secs(30);

pub struct Instance {
    base_url: String,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), RuntimeError>>,
    _dir: tempfile::TempDir,
}

impl Instance {
    /// Starts Keel with `env` over the defaults and `routes` as application routes, and waits
    /// until `/health/ready` answers 200.
    pub async fn start(env: &[(&str, String)], routes: Router<AppState>) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let database = format!("sqlite://{}", dir.path().join("keel.db").display());
        let mut pairs = vec![
            ("DATABASE_URL", database),
            ("PORT", "0".to_string()),
            ("LOG_LEVEL", "error".to_string()),
        ];
        pairs.extend(env.iter().cloned());
        let settings = Settings::load(&Source::from_pairs(pairs, dir.path()))
            .map_err(|e| format!("the bench settings are invalid: {e}"))?;
        let listener = tokio::net::TcpListener::bind((settings.http.host, 0))
            .await
            .map_err(|e| format!("cannot bind a port: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = Server::new(settings).routes(routes);
        let handle = tokio::spawn(server.run_on(listener, async {
            let _ = stopped.await;
        }));
        let instance = Instance {
            base_url: format!("http://{addr}"),
            stop: Some(stop),
            handle,
            _dir: dir,
        };
        instance.wait_ready().await?;
        Ok(instance)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Shuts down gracefully and waits for the server to end.
    pub async fn shutdown(mut self) -> Result<(), String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.handle).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn wait_ready(&self) -> Result<(), String> {
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = client.get(self.url("/health/ready")).send().await {
                if r.status() == 200 {
                    return Ok(());
                }
            }
            if started.elapsed() >= READY_WITHIN {
                return Err(format!(
                    "the bench instance did not turn ready within {READY_WITHIN:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
