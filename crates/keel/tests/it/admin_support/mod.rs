//! Helpers for the admin API tests: requests with the admin token, problem checks on every
//! error answer (including that no secret appears in it), and apps with schedules.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use keel_testkit::{admin, TestApp, TestDb};
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};

pub const ADMIN: &str = "admin-token-for-tests-0123456789abcdef";
pub const SECRET: &str = "scheduler-secret-for-tests-0123456789ab";
pub const SCHEDULES: &str = r#"
[[schedules]]
name = "nightly"
cron = "0 3 * * *"
kind = "diag.noop"
"#;
pub const JOB_FIELDS: [&str; 11] = [
    "id",
    "queue",
    "kind",
    "state",
    "attempt",
    "max_attempts",
    "unique_key",
    "run_at",
    "created_at",
    "finished_at",
    "last_error",
];
pub const STATES: [&str; 7] = [
    "scheduled",
    "available",
    "running",
    "retryable",
    "completed",
    "discarded",
    "cancelled",
];

pub use keel_testkit::Reply as Resp;

/// Sends a request; any 4xx or 5xx must be a well-formed problem without a secret in it.
pub async fn send(request: RequestBuilder) -> Resp {
    let reply = keel_testkit::send(request).await;
    if reply.status.as_u16() >= 400 {
        reply.well_formed_problem(&[ADMIN, SECRET]);
    }
    reply
}

pub fn request(app: &TestApp, method: Method, path: &str) -> RequestBuilder {
    app.client.request(method, app.url(path))
}

pub async fn get(app: &TestApp, path: &str) -> Resp {
    admin(app, Method::GET, path, None).await
}

pub async fn post(app: &TestApp, path: &str) -> Resp {
    admin(app, Method::POST, path, None).await
}

pub async fn post_json(app: &TestApp, path: &str, body: Value) -> Resp {
    admin(app, Method::POST, path, Some(&body)).await
}

pub async fn set_flag(app: &TestApp, name: &str, enabled: bool) {
    let path = format!("/admin/api/flags/{name}");
    let r = admin(
        app,
        Method::PUT,
        &path,
        Some(&json!({ "enabled": enabled })),
    )
    .await;
    assert_eq!(r.ok(200), &json!({ "name": name, "enabled": enabled }));
}

pub async fn enqueue(app: &TestApp, spec: Value) -> i64 {
    let r = post_json(app, "/admin/api/jobs", spec).await;
    assert_eq!(r.ok(201)["deduplicated"], false);
    r.body["id"].as_i64().expect("job id")
}

/// Jobs through the list route (there is no route for one job).
pub async fn jobs(app: &TestApp, query: &str) -> Vec<Value> {
    let r = get(app, &format!("/admin/api/jobs?{query}")).await;
    r.ok(200)
        .as_array()
        .unwrap_or_else(|| panic!("a list: {}", r.body))
        .clone()
}

pub async fn job(app: &TestApp, id: i64) -> Value {
    let all = jobs(app, "limit=1000").await;
    all.into_iter()
        .find(|j| j["id"] == id)
        .unwrap_or_else(|| panic!("no job {id} listed"))
}

pub async fn wait_for_state(app: &TestApp, id: i64, state: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let row = job(app, id).await;
        if row["state"] == state {
            return row;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} is not {state} after {secs} s: {row}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn audit(app: &TestApp, query: &str) -> Vec<Value> {
    let r = get(app, &format!("/admin/api/audit?{query}")).await;
    let rows = r
        .ok(200)
        .as_array()
        .unwrap_or_else(|| panic!("a list: {}", r.body))
        .clone();
    for row in &rows {
        assert_eq!(
            keys(row),
            set(&["at", "actor", "action", "target", "metadata"]),
            "{row}"
        );
    }
    rows
}

pub fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

pub fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

pub fn time(v: &Value) -> DateTime<Utc> {
    let text = v.as_str().unwrap_or_else(|| panic!("a timestamp: {v}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

/// An app with the admin token and `env`; with `schedules`, a keel.toml declaring `nightly` (for
/// SQLite in the app's directory, for Postgres through `KEEL_CONFIG`; keep the directory alive).
pub async fn spawn(
    db: TestDb,
    env: &[(&str, &str)],
    schedules: bool,
) -> (TestApp, Option<tempfile::TempDir>) {
    let mut config = None;
    let mut keep = None;
    if schedules {
        match db.dir() {
            Some(dir) => std::fs::write(dir.join("keel.toml"), SCHEDULES).expect("write keel.toml"),
            None => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let path = dir.path().join("keel.toml");
                std::fs::write(&path, SCHEDULES).expect("write keel.toml");
                config = Some(path.display().to_string());
                keep = Some(dir);
            }
        }
    }
    let mut builder = TestApp::builder(db);
    for (name, value) in env {
        builder = builder.env(name, value);
    }
    if let Some(path) = &config {
        builder = builder.env("KEEL_CONFIG", path);
    }
    (builder.spawn().await, keep)
}

/// Every admin route, with a body where one is needed.
pub fn admin_routes() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/admin/api/queues", None),
        (Method::POST, "/admin/api/queues/default/pause", None),
        (Method::POST, "/admin/api/queues/default/resume", None),
        (Method::POST, "/admin/api/queues/default/drain", None),
        (Method::GET, "/admin/api/jobs", None),
        (
            Method::POST,
            "/admin/api/jobs",
            Some(json!({ "kind": "diag.noop" })),
        ),
        (Method::POST, "/admin/api/jobs/1/retry", None),
        (Method::POST, "/admin/api/jobs/1/discard", None),
        (Method::GET, "/admin/api/flags", None),
        (
            Method::PUT,
            "/admin/api/flags/enqueue",
            Some(json!({ "enabled": false })),
        ),
        (Method::GET, "/admin/api/schedules", None),
        (
            Method::POST,
            "/admin/api/schedules/jobs.prune/trigger",
            None,
        ),
        (Method::GET, "/admin/api/audit", None),
    ]
}

/// Each route refuses each of `tokens` (None: no Authorization header) with 401, and nothing
/// changes: no audit row, no flag, no job but the scheduler's own.
pub async fn assert_closed(app: &TestApp, tokens: &[Option<&str>]) {
    for (method, path, body) in admin_routes() {
        for token in tokens {
            let mut builder = request(app, method.clone(), path);
            if let Some(token) = token {
                builder = builder.header("authorization", *token);
            }
            if let Some(body) = &body {
                builder = builder.json(body);
            }
            let r = send(builder).await;
            assert_eq!(r.status, 401, "{method} {path} with {token:?}: {}", r.body);
            r.unauthorized();
        }
    }
    assert_eq!(app.db.scalar("SELECT count(*) FROM audit_log").await, 0);
    assert_eq!(app.db.scalar("SELECT count(*) FROM flags").await, 0);
    assert_eq!(
        app.db
            .scalar("SELECT count(*) FROM jobs WHERE kind NOT IN ('jobs.prune', 'retention.events', 'privacy.maintenance', 'storage.cleanup')")
            .await,
        0
    );
}

/// Whether the app's own scheduler may fire `nightly` (03:00 UTC, missed ticks skipped after 60 s).
pub fn nightly_may_fire_itself() -> bool {
    let now = Utc::now();
    now.hour() == 3 && now.minute() <= 1
}
