//! `/health/deep`: the health report plus the job system against thresholds from `keel.toml`.

use keel_testkit::{TestApp, TestDb};

const METRICS: &str = "metrics-token-metrics-token-metrics";
const ADMIN: &str = "admin-token-admin-token-admin-token";

async fn deep(app: &TestApp) -> (u16, serde_json::Value) {
    let r = app
        .client
        .get(app.url("/health/deep"))
        .bearer_auth(METRICS)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_health_reports_thresholds() {
    let db = TestDb::sqlite();
    let dir = db.dir().unwrap().to_path_buf();
    std::fs::write(dir.join("keel.toml"), "[health]\nmax_backlog = 2\n").unwrap();
    // No scheduler: in the first minute of an hour the built-in schedules (prune, retention,
    // privacy maintenance) would each leave a job waiting and make the backlog start above 2.
    let app = TestApp::builder(db)
        .env("METRICS_TOKEN", METRICS)
        .env("ADMIN_TOKEN", ADMIN)
        .env("SCHEDULER_ENABLED", "false")
        .spawn()
        .await;
    assert_eq!(
        app.get("/health/deep").await.status(),
        401,
        "bearer METRICS_TOKEN when set"
    );

    let (status, body) = deep(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["checks"]["database"]["status"], "ok");
    assert_eq!(body["queue"]["status"], "ok");
    assert_eq!(body["queue"]["thresholds"]["max_backlog"], 2);

    // Jobs wait in a paused queue of their own (the built-in hourly prune may wait in `default`).
    let admin = |path: &str| app.client.post(app.url(path)).bearer_auth(ADMIN);
    assert_eq!(
        admin("/admin/api/queues/deep/pause")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    for _ in 0..3 {
        let r = admin("/admin/api/jobs")
            .json(&serde_json::json!({"kind": "diag.noop", "queue": "deep"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let (status, body) = deep(&app).await;
    assert_eq!(status, 200, "degraded is still 200: {body}");
    assert_eq!(body["status"], "degraded", "{body}");
    assert!(body["queue"]["backlog"].as_i64().unwrap() >= 3, "{body}");
    assert_eq!(
        body["queue"]["exceeded"],
        serde_json::json!(["max_backlog"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_role_does_not_serve_deep_health() {
    let app = TestApp::builder(TestDb::sqlite())
        .env("PROCESS_ROLE", "worker")
        .spawn()
        .await;
    assert_eq!(app.get("/health/deep").await.status(), 404);
}
