//! With `STORAGE_REQUIRED`, readiness and `/health` report the backend and wait for it; without,
//! a storage outage does not take the process out of rotation.

use std::time::Duration;

use keel_testkit::{eventually, free_port, TestApp, TestDb};
use serde_json::Value;

use super::Fixture;

async fn ready(app: &TestApp) -> (u16, Value) {
    let r = app.get("/health/ready").await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_checks_a_required_backend() {
    for fx in [Fixture::file().await, Fixture::s3().await] {
        let app = fx
            .app(TestDb::sqlite())
            .env("STORAGE_REQUIRED", "true")
            .spawn()
            .await;
        let (status, body) = ready(&app).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["checks"]["storage"]["status"], "ok", "{body}");
        let health: Value = app.get("/health").await.json().await.unwrap();
        assert_eq!(health["checks"]["storage"]["status"], "ok", "{health}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_required_backend_is_not_ready() {
    // Nothing listens on the port: the bucket cannot be reached.
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let down = |required: &str| {
        TestApp::builder(TestDb::sqlite())
            .env("STORAGE_URL", "s3://keel-down")
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "down")
            .env("AWS_SECRET_ACCESS_KEY", "down-secret")
            .env("STORAGE_REQUIRED", required)
            .no_wait()
    };
    let app = down("true").spawn().await;
    let body = eventually(
        "readiness answers with its checks",
        Duration::from_secs(30),
        || async {
            let (status, body) = ready(&app).await;
            (status == 503 && body["phase"] == "ready").then_some(body)
        },
    )
    .await;
    assert_eq!(body["checks"]["storage"]["status"], "fail", "{body}");
    let error = body["checks"]["storage"]["error"].as_str().unwrap();
    assert!(!error.contains("down-secret"), "{error}");

    let optional = down("false").spawn().await;
    optional.wait_ready(Duration::from_secs(30)).await;
    let (status, body) = ready(&optional).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["checks"].get("storage").is_none(), "{body}");
}
