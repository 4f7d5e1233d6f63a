//! Shared by the rate-limit tests: apps with a `keel.toml` of their own and a few test routes,
//! answers with their rate-limit fields parsed, and a private `redis-server` to stop at will.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::middleware::from_fn;
use axum::routing::{self, post};
use axum::Router;
use keel::http::middleware::rate_limit;
use keel::http::AppState;
use keel_testkit::{FakeIdp, TestApp, TestDb};
use reqwest::header::HeaderMap;
use serde_json::Value;

/// Routes of a library user's app: one plain, one that moves money, one with a path parameter.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/t/ping", routing::get(|| async { "pong" }))
        .route(
            "/t/pay",
            post(|| async { "paid" }).route_layer(from_fn(rate_limit::money_moving)),
        )
        .route("/t/files/{id}", post(|| async { "stored" }))
}

/// One `[[rate_limits]]` table.
pub fn policy(name: &str, limit: u32, period: &str, key: &str, routes: &[&str]) -> String {
    let routes: Vec<String> = routes.iter().map(|r| format!("{r:?}")).collect();
    format!(
        "[[rate_limits]]\nname = {name:?}\nlimit = {limit}\nperiod = {period:?}\nkey = {key:?}\nroutes = [{}]\n",
        routes.join(", ")
    )
}

/// A name no other test (or earlier run) uses, for keys in a shared Redis.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// A running app and the directory holding its `keel.toml`.
pub struct Limited {
    pub app: TestApp,
    _config: tempfile::TempDir,
}

impl std::ops::Deref for Limited {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

pub async fn spawn(toml: &str, env: &[(&str, &str)]) -> Limited {
    spawn_with(toml, env, None).await
}

/// An app whose tokens come from `idp`.
pub async fn spawn_with(toml: &str, env: &[(&str, &str)], idp: Option<&FakeIdp>) -> Limited {
    let config = tempfile::tempdir().expect("temporary directory");
    let path = config.path().join("keel.toml");
    std::fs::write(&path, toml).expect("write keel.toml");
    let mut builder = TestApp::builder(TestDb::sqlite())
        .routes(routes())
        .env("KEEL_CONFIG", path.to_str().expect("utf-8 path"));
    if let Some(idp) = idp {
        builder = builder
            .env("AUTH_JWKS_URL", &idp.jwks_url())
            .env("AUTH_ISSUER", &idp.issuer())
            .env("AUTH_AUDIENCE", "keel-test");
    }
    for (name, value) in env {
        builder = builder.env(name, value);
    }
    Limited {
        app: builder.spawn().await,
        _config: config,
    }
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header"))
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    /// Every member of every `name` field line (a structured-field list).
    fn members(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .flat_map(|v| v.to_str().expect("ascii").split(','))
            .map(|m| m.trim().to_string())
            .collect()
    }

    /// The `RateLimit-Policy` members: `"name";q=N;w=S`.
    pub fn policies(&self) -> Vec<String> {
        self.members("ratelimit-policy")
    }

    /// `(policy, r, t)` of each `RateLimit` member.
    pub fn limits(&self) -> Vec<(String, u64, u64)> {
        self.members("ratelimit")
            .iter()
            .map(|m| {
                let mut parts = m.split(';');
                let name = parts.next().unwrap().trim_matches('"').to_string();
                let (mut r, mut t) = (None, None);
                for p in parts {
                    match p.split_once('=') {
                        Some(("r", v)) => r = v.parse().ok(),
                        Some(("t", v)) => t = v.parse().ok(),
                        _ => {}
                    }
                }
                (name, r.expect("r"), t.expect("t"))
            })
            .collect()
    }

    /// The one `RateLimit` member of `policy`.
    pub fn limit(&self, policy: &str) -> (u64, u64) {
        let found: Vec<_> = self
            .limits()
            .into_iter()
            .filter(|l| l.0 == policy)
            .collect();
        assert_eq!(found.len(), 1, "{policy} in {:?}", self.headers);
        (found[0].1, found[0].2)
    }
}

pub async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    Answer {
        status,
        headers,
        text,
    }
}

pub async fn get(app: &TestApp, path: &str) -> Answer {
    send(app.client.get(app.url(path))).await
}

/// The value of the `/metrics` sample that starts with `sample` (name and labels).
pub async fn metric(app: &TestApp, sample: &str) -> Option<f64> {
    let text = get(app, "/metrics").await.text;
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

/// A `redis-server` of this test's own, on a free port, without persistence.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    /// Starts one, or `None` (with a notice) when `redis-server` is not installed.
    pub async fn start() -> Option<PrivateRedis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut redis = PrivateRedis {
            port,
            child: None,
            dir: tempfile::tempdir().expect("temporary directory"),
        };
        if !redis.restart().await {
            eprintln!("note: redis-server is not installed; this test ran nothing");
            return None;
        }
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port; false when there is no `redis-server`.
    pub async fn restart(&mut self) -> bool {
        let spawned = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = spawned else { return false };
        self.child = Some(child);
        let started = Instant::now();
        while keel::probe::redis_ping_url(&self.url(), Duration::from_millis(200))
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not answer on port {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Kills the server (SIGKILL) and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
pub mod tls;
