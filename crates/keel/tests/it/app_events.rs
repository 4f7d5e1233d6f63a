//! Events for the app: a real HTTP receiver on a free port records every delivery; the tests
//! drive the dispatcher pass by pass and move the test clock instead of waiting for backoffs.

use crate::billing_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use keel::clock::Clock;
use keel::crypto::standard_webhooks::{verify, Received, WebhookSecret};
use keel::events::Dispatcher;
use keel::store::app_events::AppEventRow;
use keel_testkit::{TestApp, TestAppBuilder, TestDb};
use serde_json::Value;

mod changes;
mod delivery;
mod ordering;

/// The app's signing secret in the tests.
pub const SECRET: &str = "whsec_dGVzdC1ldmVudHMtc2VjcmV0LTAxMjM0NTY3ODk=";

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
pub struct Call {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
    pub status: u16,
    /// The signature checked with Keel's verifier against the app's clock.
    pub verified: bool,
}

impl Call {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// The answer to the `n`th request (0-based) with this body: a status and an optional
/// `Retry-After`.
pub type Plan = Arc<dyn Fn(usize, &Value) -> (u16, Option<&'static str>) + Send + Sync>;

#[derive(Clone)]
struct Shared {
    calls: Arc<Mutex<Vec<Call>>>,
    plan: Plan,
    clock: Arc<Mutex<Clock>>,
}

/// The app's events endpoint: a real HTTP server on 127.0.0.1 and a free port.
pub struct Receiver {
    pub url: String,
    calls: Arc<Mutex<Vec<Call>>>,
    clock: Arc<Mutex<Clock>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Receiver {
    /// A receiver answering by `plan`, checking timestamps against the system clock until
    /// [`Receiver::follow`] gives it the app's.
    pub async fn start(plan: Plan) -> Receiver {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let clock = Arc::new(Mutex::new(Clock::system()));
        let shared = Shared {
            calls: calls.clone(),
            plan,
            clock: clock.clone(),
        };
        let router = Router::new()
            .route("/keel/events", post(receive))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Receiver {
            url: format!("http://{addr}/keel/events"),
            calls,
            clock,
            _stop: stop,
        }
    }

    /// Checks timestamps against `clock` (the app's, which tests move).
    pub fn follow(&self, clock: &Clock) {
        *self.clock.lock().unwrap() = clock.clone();
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// The calls it answered 2xx.
    pub fn accepted(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| (200..300).contains(&c.status))
            .collect()
    }
}

async fn receive(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> impl IntoResponse {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let secrets = vec![WebhookSecret::parse(SECRET).unwrap()];
    let received = Received {
        id: Some(&id),
        timestamp: Some(&timestamp),
        signature: Some(&signature),
    };
    let now = shared.clock.lock().unwrap().now().timestamp();
    let verified = verify(received, &body, &secrets, now).is_ok();
    let mut calls = shared.calls.lock().unwrap();
    let parsed: Value = serde_json::from_slice(&body).unwrap_or_default();
    let (status, retry_after) = (shared.plan)(calls.len(), &parsed);
    calls.push(Call {
        id,
        timestamp,
        signature,
        body: body.to_vec(),
        status,
        verified,
    });
    let mut response = (StatusCode::from_u16(status).unwrap(), "answer").into_response();
    if let Some(after) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", after.parse().unwrap());
    }
    response
}

/// An app delivering events to `url`, with billing configured; its own worker off, so the tests
/// drive the dispatcher. Keep the returned directory alive.
pub fn app(db: TestDb, url: &str) -> (TestAppBuilder, tempfile::TempDir) {
    let (dir, path) = billing_support::config_dir();
    let builder = billing_support::app(db, &path)
        .env("APP_EVENTS_URL", url)
        .env("APP_WEBHOOK_SECRET", SECRET)
        .env("WORKER_ENABLED", "false");
    (builder, dir)
}

/// A receiver and an app delivering to it, sharing the app's clock.
pub async fn app_and_receiver(db: TestDb, plan: Plan) -> (TestApp, Receiver, tempfile::TempDir) {
    let receiver = Receiver::start(plan).await;
    let (builder, dir) = app(db, &receiver.url);
    let app = builder.spawn().await;
    receiver.follow(app.clock());
    (app, receiver, dir)
}

/// The app's dispatcher.
pub fn dispatcher(app: &TestApp) -> Dispatcher {
    Dispatcher::from_services(app.services()).expect("APP_EVENTS_URL is set")
}

/// Passes until no event is left undelivered, moving the clock past each backoff; at most
/// `limit` passes.
pub async fn drain(app: &TestApp, limit: usize) {
    let d = dispatcher(app);
    for _ in 0..limit {
        let pass = d.run_once().await.expect("a pass");
        if pass.attempted() == 0 {
            if app.services().db.app_events_backlog().await.unwrap() == 0 {
                return;
            }
            app.clock().advance(Duration::from_secs(3601));
        }
    }
    panic!("events still undelivered after {limit} passes");
}

/// Every stored event, oldest first.
pub async fn stored(app: &TestApp) -> Vec<AppEventRow> {
    app.services().db.app_events(100_000).await.unwrap()
}

/// Whether python3 can import `standardwebhooks`; in CI it must
/// (`KEEL_TEST_REQUIRE_PYTHON_WEBHOOKS=1`, set by .ci/run, which installs it).
pub fn python_webhooks() -> bool {
    let found = std::process::Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("KEEL_TEST_REQUIRE_PYTHON_WEBHOOKS").is_err(),
            "python3 with standardwebhooks is required (pip install standardwebhooks)"
        );
        eprintln!("note: the Python standardwebhooks package is not installed; skipping its check");
    }
    found
}
