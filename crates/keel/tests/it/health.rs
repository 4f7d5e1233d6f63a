//! Health, readiness, liveness and metrics on both engines, per role, with and without Redis
//! (SPEC §2 and §4, "Health and metrics").

use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use keel::http::AppState;
use keel_testkit::{TestApp, TestDb};
use serde_json::Value;

async fn json_of(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn content_type(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// A 401 problem+json with `www-authenticate: Bearer`.
async fn assert_unauthorized(response: reqwest::Response) {
    assert_eq!(response.status(), 401);
    assert!(content_type(&response).starts_with("application/problem+json"));
    let challenge = response
        .headers()
        .get("www-authenticate")
        .expect("www-authenticate");
    assert!(
        challenge.to_str().unwrap().starts_with("Bearer"),
        "{challenge:?}"
    );
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body = json_of(response).await;
    assert_eq!(body["status"], 401);
    assert_eq!(body["request_id"], request_id.as_str());
    assert!(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string());
}

fn hello_routes() -> Router<AppState> {
    Router::new().route("/hello", get(|| async { "hello" }))
}

async fn metrics_with(app: &TestApp, authorization: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url("/metrics"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.expect("request")
}

/// Waits until the process reports phase `ready` on `/health` (for apps whose `/health/ready`
/// is expected to stay 503).
async fn wait_migrated(app: &TestApp) {
    let started = Instant::now();
    loop {
        if let Ok(response) = app.client.get(app.url("/health")).send().await {
            if let Ok(body) = response.json::<Value>().await {
                if body["phase"] == "ready" {
                    return;
                }
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never migrated"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

keel_testkit::engine_test!(ready_answers_ok);
async fn ready_answers_ok(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let response = app.get("/health/ready").await;
    assert_eq!(response.status(), 200);
    assert!(content_type(&response).starts_with("application/json"));
    assert_eq!(json_of(response).await["status"], "ok");
    app.shutdown().await.unwrap();
}

keel_testkit::engine_test!(health_reports_every_check);
async fn health_reports_every_check(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    let body = json_of(response).await;
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["role"], "all");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime_s"].is_u64(), "{body}");
    assert_eq!(body["checks"]["database"]["status"], "ok", "{body}");
    let latency = body["checks"]["database"]["latency_ms"]
        .as_f64()
        .expect("numeric latency_ms");
    assert!(latency >= 0.0);
    assert!(
        body["checks"].get("redis").is_none(),
        "no redis check without REDIS_URL"
    );
    app.shutdown().await.unwrap();
}

keel_testkit::engine_test!(live_answers);
async fn live_answers(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let response = app.get("/health/live").await;
    assert_eq!(response.status(), 200);
    assert_eq!(json_of(response).await["status"], "ok");
    app.shutdown().await.unwrap();
}

keel_testkit::engine_test!(metrics_are_open_without_a_token);
async fn metrics_are_open_without_a_token(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        content_type(&response).starts_with("text/plain"),
        "{}",
        content_type(&response)
    );
    let text = response.text().await.unwrap();
    assert!(text.contains("keel_build_info{version="), "{text}");
    app.shutdown().await.unwrap();
}

keel_testkit::engine_test!(metrics_require_the_token_when_set);
async fn metrics_require_the_token_when_set(db: TestDb) {
    let app = TestApp::builder(db)
        .env("METRICS_TOKEN", "some-token")
        .spawn()
        .await;
    assert_unauthorized(metrics_with(&app, None).await).await;
    assert_unauthorized(metrics_with(&app, Some("Bearer wrong-token")).await).await;
    assert_unauthorized(metrics_with(&app, Some("Bearer some-token-longer")).await).await;
    assert_unauthorized(metrics_with(&app, Some("Basic some-token")).await).await;
    assert_unauthorized(metrics_with(&app, Some("some-token")).await).await;
    for authorization in [
        "Bearer some-token",
        "bearer some-token",
        "BEARER some-token",
    ] {
        let response = metrics_with(&app, Some(authorization)).await;
        assert_eq!(response.status(), 200, "{authorization}");
        assert!(content_type(&response).starts_with("text/plain"));
        assert!(response
            .text()
            .await
            .unwrap()
            .contains("keel_build_info{version="));
    }
    app.shutdown().await.unwrap();
}

keel_testkit::engine_test!(worker_role_serves_only_health_and_metrics);
async fn worker_role_serves_only_health_and_metrics(db: TestDb) {
    let app = TestApp::builder(db)
        .env("PROCESS_ROLE", "worker")
        .routes(hello_routes())
        .spawn()
        .await;
    for path in ["/health", "/health/live", "/health/ready", "/metrics"] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
    assert_eq!(json_of(app.get("/health").await).await["role"], "worker");
    for path in [
        "/hello",
        "/v1/me",
        "/admin/api/queues",
        "/admin",
        "/openapi.json",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(
            content_type(&response).starts_with("application/problem+json"),
            "{path}"
        );
        let body = json_of(response).await;
        assert_eq!(body["status"], 404);
    }
    app.shutdown().await.unwrap();
}

keel_testkit::engine_test!(api_role_serves_application_routes);
async fn api_role_serves_application_routes(db: TestDb) {
    let app = TestApp::builder(db)
        .env("PROCESS_ROLE", "api")
        .routes(hello_routes())
        .spawn()
        .await;
    let response = app.get("/hello").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "hello");
    assert_eq!(json_of(app.get("/health").await).await["role"], "api");
    assert_eq!(app.get("/metrics").await.status(), 200);
    app.shutdown().await.unwrap();
}

keel_testkit::engine_test!(redis_reachable_is_checked);
async fn redis_reachable_is_checked(db: TestDb) {
    let Some(redis) = keel_testkit::redis_url() else {
        return;
    };
    let app = TestApp::builder(db).env("REDIS_URL", &redis).spawn().await;
    let body = json_of(app.get("/health").await).await;
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["checks"]["redis"]["status"], "ok", "{body}");
    assert!(body["checks"]["redis"]["latency_ms"].is_number(), "{body}");
    assert_eq!(app.get("/health/ready").await.status(), 200);
    app.shutdown().await.unwrap();
}

keel_testkit::engine_test!(redis_unreachable_degrades);
async fn redis_unreachable_degrades(db: TestDb) {
    let app = TestApp::builder(db)
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .no_wait()
        .spawn()
        .await;
    wait_migrated(&app).await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    let body = json_of(response).await;
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["checks"]["database"]["status"], "ok", "{body}");
    assert_eq!(body["checks"]["redis"]["status"], "fail", "{body}");
    // Failing open, Redis is not required: the process stays in rotation.
    assert_eq!(app.get("/health/ready").await.status(), 200);
    assert_eq!(app.get("/health/live").await.status(), 200);
    app.shutdown().await.unwrap();
}

keel_testkit::engine_test!(redis_unreachable_is_not_ready_when_the_limiter_fails_closed);
async fn redis_unreachable_is_not_ready_when_the_limiter_fails_closed(db: TestDb) {
    let app = TestApp::builder(db)
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env("RATE_LIMIT_BACKEND", "redis")
        .env("RATE_LIMIT_FAIL_CLOSED", "true")
        .no_wait()
        .spawn()
        .await;
    wait_migrated(&app).await;
    let response = app.get("/health/ready").await;
    assert_eq!(response.status(), 503);
    let body = json_of(response).await;
    assert_eq!(body["checks"]["redis"]["status"], "fail", "{body}");
    // Required, so /health fails with readiness: 503 `fail`, not `degraded`.
    let response = app.get("/health").await;
    assert_eq!(response.status(), 503);
    let body = json_of(response).await;
    assert_eq!(body["status"], "fail", "{body}");
    assert_eq!(body["checks"]["database"]["status"], "ok", "{body}");
    assert_eq!(body["checks"]["redis"]["status"], "fail", "{body}");
    assert_eq!(app.get("/health/live").await.status(), 200);
    app.shutdown().await.unwrap();
}

/// SPEC §4: `/health` answers 503 with its report (`"status":"fail"` and the checks) when the
/// database does not answer; the report must survive the edge's problem rewriting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_a_failing_database_with_503() {
    let app = TestApp::builder(TestDb::sqlite())
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nothing")
        .env("MIGRATE_ON_START", "false")
        .no_wait()
        .spawn()
        .await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 503);
    let body = json_of(response).await;
    assert_eq!(body["status"], "fail", "{body}");
    assert_eq!(body["checks"]["database"]["status"], "fail", "{body}");
    assert_eq!(app.get("/health/ready").await.status(), 503);
    assert_eq!(app.get("/health/live").await.status(), 200);
    app.shutdown().await.unwrap();
}
