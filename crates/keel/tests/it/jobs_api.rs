//! The jobs API for the app: service tokens only, one job or a batch, `Idempotency-Key`, the
//! enqueue kill switch, reading a job back, and the audit row naming the service.

use keel::auth::dev::{self, DevClaims};
use keel_testkit::{send, Reply, TestApp, TestDb};
use reqwest::Method;
use serde_json::{json, Value};

const APP_SECRET: &str = "app-service-secret-0123456789abcdef";
const CRON_SECRET: &str = "cron-service-secret-0123456789abcdef";
const ADMIN: &str = "admin-token-for-tests-0123456789abcdef";

/// An API-only app (no worker, so jobs stay as enqueued) with two service tokens.
async fn app(db: TestDb, extra: &[(&str, &str)]) -> TestApp {
    let tokens = format!("app:{APP_SECRET},cron:{CRON_SECRET}");
    let mut builder = TestApp::builder(db)
        .env("PROCESS_ROLE", "api")
        .env("SERVICE_TOKENS", &tokens)
        .env("ADMIN_TOKEN", ADMIN);
    for (name, value) in extra {
        builder = builder.env(name, value);
    }
    builder.spawn().await
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    key: Option<&str>,
    body: Option<&Value>,
) -> Reply {
    let mut request = app.client.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let reply = send(request).await;
    if reply.status.as_u16() >= 400 {
        reply.well_formed_problem(&[APP_SECRET, CRON_SECRET, ADMIN]);
    }
    reply
}

async fn post(app: &TestApp, key: Option<&str>, body: &Value) -> Reply {
    call(
        app,
        Method::POST,
        "/v1/jobs",
        Some(APP_SECRET),
        key,
        Some(body),
    )
    .await
}

async fn get(app: &TestApp, id: &Value) -> Reply {
    let path = format!("/v1/jobs/{id}");
    call(app, Method::GET, &path, Some(APP_SECRET), None, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_service_token_may_call_the_jobs_api() {
    let db = TestDb::sqlite();
    let app = app(db, &[("AUTH_DEV_MODE", "true")]).await;
    let key = dev::load_or_create(&app.services().settings.data_dir).expect("development key");
    let claims = DevClaims {
        user: "u-1",
        tenant: None,
        tenant_claim: "org_id",
        admin: true,
        ttl_s: 600,
    };
    let user = dev::mint(&key, &claims, chrono::Utc::now().timestamp());
    let body = json!({ "kind": "diag.noop" });
    for (method, path, body) in [
        (Method::POST, "/v1/jobs", Some(&body)),
        (Method::GET, "/v1/jobs/1", None),
    ] {
        let none = call(&app, method.clone(), path, None, None, body).await;
        none.problem(401, "unauthorized");
        for token in [
            user.as_str(),
            ADMIN,
            "app",
            "app-service-secret-0123456789abcdeX",
        ] {
            let reply = call(&app, method.clone(), path, Some(token), None, body).await;
            reply.problem(401, "invalid-token");
            assert!(!reply.text.contains(&user), "{}", reply.text);
        }
    }
    assert!(app
        .services()
        .db
        .list_jobs(&Default::default())
        .await
        .unwrap()
        .is_empty());
}

keel_testkit::engine_test!(one_job_and_a_batch_are_enqueued_audited_and_read_back);
async fn one_job_and_a_batch_are_enqueued_audited_and_read_back(db: TestDb) {
    let app = app(db, &[]).await;
    let before = app.clock().now();
    let one = post(
        &app,
        None,
        &json!({ "kind": "diag.noop", "args": { "n": 1 }, "delay_seconds": 60,
                 "max_attempts": 3, "breaker_key": "mail", "priority": 2 }),
    )
    .await;
    let one = one.ok(201);
    assert_eq!(one["deduplicated"], false);
    let job = get(&app, &one["id"]).await;
    let job = job.ok(200);
    assert_eq!(job["kind"], "diag.noop");
    assert_eq!(job["state"], "scheduled");
    assert_eq!(job["attempt"], 0);
    assert_eq!(job["max_attempts"], 3);
    assert!(job["last_error"].is_null() && job["finished_at"].is_null());
    let run_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(job["run_at"].clone()).unwrap();
    let delay = (run_at - before).num_seconds();
    assert!((59..=61).contains(&delay), "{delay}");

    let batch = json!({ "jobs": [
        { "kind": "diag.noop" },
        { "kind": "diag.sleep", "args": { "ms": 1 }, "queue": "other" },
        { "kind": "diag.noop", "run_at": "2030-01-01T00:00:00Z" },
    ]});
    let reply = post(&app, None, &batch).await;
    let jobs = reply.ok(201)["jobs"].as_array().unwrap().clone();
    assert_eq!(jobs.len(), 3);
    let second = get(&app, &jobs[1]["id"]).await;
    assert_eq!(second.ok(200)["queue"], "other");
    let third = get(&app, &jobs[2]["id"]).await;
    assert_eq!(third.ok(200)["run_at"], "2030-01-01T00:00:00Z");

    let audit = app.services().audit_log(None, 10).await.unwrap();
    let enqueues: Vec<_> = audit.iter().filter(|r| r.action == "job.enqueue").collect();
    assert_eq!(enqueues.len(), 2, "{audit:?}");
    assert!(
        enqueues.iter().all(|r| r.actor == "service:app"),
        "{audit:?}"
    );
}

keel_testkit::engine_test!(an_idempotency_key_answers_the_live_job_again);
async fn an_idempotency_key_answers_the_live_job_again(db: TestDb) {
    let app = app(db, &[]).await;
    let body = json!({ "kind": "diag.noop" });
    let first = post(&app, Some("signup-42"), &body).await;
    let first = first.ok(201).clone();
    let again = post(&app, Some("signup-42"), &body).await;
    let again = again.ok(200);
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["deduplicated"], true);
    assert_eq!(
        get(&app, &first["id"]).await.ok(200)["unique_key"],
        "signup-42"
    );

    let batch = json!({ "jobs": [{ "kind": "diag.noop" }, { "kind": "diag.noop" }] });
    let jobs = post(&app, Some("import-7"), &batch).await.ok(201)["jobs"].clone();
    for (i, job) in jobs.as_array().unwrap().iter().enumerate() {
        let key = format!("import-7:{i}");
        assert_eq!(get(&app, &job["id"]).await.ok(200)["unique_key"], key);
    }
    let again = post(&app, Some("import-7"), &batch).await.ok(201)["jobs"].clone();
    assert_eq!(again[0]["id"], jobs[0]["id"]);
    assert_eq!(again[1]["deduplicated"], true);

    let both = json!({ "kind": "diag.noop", "unique_key": "k" });
    let reply = post(&app, Some("k2"), &both).await;
    reply.problem(422, "validation-failed");
    assert_eq!(reply.fields(), ["unique_key".to_string()].into());
    let long = "k".repeat(201);
    post(&app, Some(&long), &body)
        .await
        .problem(400, "malformed-request");
}

keel_testkit::engine_test!(bad_bodies_are_named_problems);
async fn bad_bodies_are_named_problems(db: TestDb) {
    let app = app(db, &[]).await;
    let cases = [
        (
            json!({ "kind": "diag.noop", "run_at": "2030-01-01T00:00:00Z", "delay_seconds": 5 }),
            "delay_seconds",
        ),
        (json!({ "kind": "diag.noop", "colour": "red" }), "colour"),
        (json!({ "kind": "bad kind" }), "kind"),
        (json!({ "jobs": [] }), "jobs"),
        (
            json!({ "jobs": [{ "kind": "diag.noop" }, { "kind": "diag.noop", "max_attempts": 0 }] }),
            "max_attempts",
        ),
        (
            json!({ "jobs": [{ "kind": "diag.noop", "delay_seconds": -1 }] }),
            "jobs[0].delay_seconds",
        ),
    ];
    for (body, field) in cases {
        let reply = post(&app, None, &body).await;
        reply.problem(422, "validation-failed");
        let fields = reply.fields();
        assert!(
            fields.iter().any(|f| f.contains(field)),
            "{body}: {fields:?}"
        );
    }
    let reply = call(&app, Method::POST, "/v1/jobs", Some(APP_SECRET), None, None).await;
    assert_eq!(reply.status, 415, "{}", reply.text);
    let reply = call(
        &app,
        Method::GET,
        "/v1/jobs/x",
        Some(APP_SECRET),
        None,
        None,
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    get(&app, &json!(987654)).await.problem(404, "not-found");
    assert!(app
        .services()
        .db
        .list_jobs(&Default::default())
        .await
        .unwrap()
        .is_empty());
}

keel_testkit::engine_test!(enqueue_switched_off_is_a_503_problem);
async fn enqueue_switched_off_is_a_503_problem(db: TestDb) {
    let app = app(db, &[("ENQUEUE_ENABLED", "false")]).await;
    let reply = post(&app, None, &json!({ "kind": "diag.noop" })).await;
    reply.problem(503, "enqueue-disabled");
    let reply = post(&app, None, &json!({ "jobs": [{ "kind": "diag.noop" }] })).await;
    reply.problem(503, "enqueue-disabled");
}

#[test]
fn service_tokens_are_checked_and_short_secrets_refused_in_production() {
    let load = |pairs: &[(&str, &str)]| {
        let dir = tempfile::tempdir().unwrap();
        let src = keel::config::Source::from_pairs(pairs.iter().copied(), dir.path());
        keel::Settings::load_lenient(&src).1
    };
    let production = [
        ("APP_ENV", "production"),
        (
            "SERVICE_TOKENS",
            "app:short-secret-hunter2,cron:0123456789abcdef0123456789abcdef",
        ),
    ];
    let problems = load(&production);
    let service: Vec<_> = problems
        .iter()
        .filter(|p| p.variable == "SERVICE_TOKENS")
        .collect();
    assert_eq!(service.len(), 1, "{problems:?}");
    assert!(
        service[0]
            .message
            .contains("app: the secret must be at least 32"),
        "{service:?}"
    );
    assert!(!format!("{problems:?}").contains("hunter2"), "{problems:?}");

    let problems = load(&[("SERVICE_TOKENS", "app:short-secret-hunter2")]);
    assert!(
        problems.iter().all(|p| p.variable != "SERVICE_TOKENS"),
        "{problems:?}"
    );
    let problems = load(&[(
        "SERVICE_TOKENS",
        "app:one-hunter2,app:two-hunter2,bad name:x",
    )]);
    let service: Vec<_> = problems
        .iter()
        .filter(|p| p.variable == "SERVICE_TOKENS")
        .collect();
    assert_eq!(service.len(), 2, "{problems:?}");
    assert!(!format!("{problems:?}").contains("hunter2"), "{problems:?}");
}
