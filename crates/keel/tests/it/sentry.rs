//! Error reports reach a Sentry-protocol endpoint (a local fake) for a 500, a panic and a job's
//! final failure, tagged by service, with the user id only and no secret.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use keel::auth::Principal;
use keel::http::{ApiError, AppState};
use keel_testkit::{FakeIdp, TestApp, TestDb};

const ADMIN: &str = "admin-token-admin-token-admin-token";

type Received = Arc<Mutex<Vec<(String, String)>>>;

async fn fake_sentry() -> (String, Received) {
    let received: Received = Arc::default();
    let router = Router::new()
        .route(
            "/api/42/envelope/",
            post(|State(r): State<Received>, headers: axum::http::HeaderMap, body: Bytes| async move {
                let auth = headers
                    .get("x-sentry-auth")
                    .map(|v| v.to_str().unwrap_or("").to_string())
                    .unwrap_or_default();
                r.lock().unwrap().push((auth, String::from_utf8_lossy(&body).into_owned()));
                "{}"
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://publickey@{addr}/42"), received)
}

fn events(received: &Received) -> Vec<serde_json::Value> {
    received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, body)| {
            serde_json::from_str(body.lines().nth(2).expect("event line")).expect("event json")
        })
        .collect()
}

/// Waits for an event of `kind` that `ours` recognises: the reporter is process-wide, so other
/// tests' apps may report too once this test's app has started it.
async fn wait_for(
    received: &Received,
    kind: &str,
    ours: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let started = Instant::now();
    loop {
        if let Some(e) = events(received)
            .into_iter()
            .find(|e| e["tags"]["kind"] == kind && ours(e))
        {
            return e;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no {kind} event: {:?}",
            events(received)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn panicking(State(_state): State<AppState>) -> &'static str {
    panic!("the handler broke")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_reported_tagged_and_without_secrets() {
    let (dsn, received) = fake_sentry().await;
    let idp = FakeIdp::start().await;
    let routes: Router<AppState> = Router::new()
        .route(
            "/boom",
            get(|_user: Principal| async { Err::<(), _>(ApiError::internal()) }),
        )
        .route("/panic", get(panicking));
    let app = TestApp::builder(TestDb::sqlite())
        .env("SENTRY_DSN", &dsn)
        .env("SENTRY_ENVIRONMENT", "staging-test")
        .env("SENTRY_RELEASE", "9.9.9")
        .env("ADMIN_TOKEN", ADMIN)
        .env("AUTH_JWKS_URL", &idp.jwks_url())
        .routes(routes)
        .spawn()
        .await;
    let token = idp.token(&idp.claims("user-42"));

    let boom = app
        .client
        .get(app.url("/boom"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(boom.status(), 500);
    let request_id = boom.headers()["x-request-id"].to_str().unwrap().to_string();
    let event = wait_for(&received, "http_5xx", |e| {
        e["tags"]["request_id"] == request_id.as_str()
    })
    .await;
    assert_eq!(event["tags"]["service"], "api");
    assert_eq!(event["tags"]["request_id"], request_id.as_str());
    assert_eq!(event["tags"]["route"], "/boom");
    assert_eq!(event["environment"], "staging-test");
    assert_eq!(event["release"], "9.9.9");
    assert_eq!(event["user"], serde_json::json!({"id": "user-42"}));

    assert_eq!(app.get("/panic").await.status(), 500);
    let panic = wait_for(&received, "panic", |e| {
        e["message"]["formatted"]
            .as_str()
            .is_some_and(|m| m.contains("the handler broke"))
    })
    .await;
    assert!(panic["message"]["formatted"]
        .as_str()
        .unwrap()
        .contains("the handler broke"));

    let job = app
        .client
        .post(app.url("/admin/api/jobs"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"kind": "diag.fail", "args": {"times": 5}, "max_attempts": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(job.status(), 201);
    let job: serde_json::Value = job.json().await.unwrap();
    let failed_job = format!("job {} (diag.fail) ", job["id"]);
    let failed = wait_for(&received, "job_failed", |e| {
        e["message"]["formatted"]
            .as_str()
            .is_some_and(|m| m.starts_with(&failed_job))
    })
    .await;
    assert_eq!(failed["tags"]["job_kind"], "diag.fail");
    assert_eq!(failed["tags"]["queue"], "default");

    for (auth, body) in received.lock().unwrap().iter() {
        assert!(auth.contains("sentry_key=publickey"), "{auth}");
        assert!(!body.contains(ADMIN), "no admin token in a report");
        assert!(!body.contains(&token), "no bearer token in a report");
    }
    let http_events = events(&received)
        .iter()
        .filter(|e| e["tags"]["kind"] == "http_5xx")
        .filter(|e| e["tags"]["route"] == "/boom" || e["tags"]["route"] == "/panic")
        .count();
    assert_eq!(http_events, 1, "a panic is reported once, as a panic");
}
