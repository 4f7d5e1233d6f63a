//! Only declared kinds are enqueued: built in, a Rust handler of the server, or an HTTP kind of
//! `keel.toml`. An API-only process knows them as well as a worker does.

use std::collections::BTreeSet;

use keel::jobs::Registry;
use keel_testkit::{send, Reply, TestApp, TestDb};
use reqwest::Method;
use serde_json::{json, Value};

const SERVICE: &str = "app-service-secret-0123456789abcdef";
const ADMIN: &str = "admin-token-for-tests-0123456789abcdef";

async fn app(db: TestDb) -> TestApp {
    TestApp::builder(db)
        .env("PROCESS_ROLE", "api")
        .env("SERVICE_TOKENS", &format!("app:{SERVICE}"))
        .env("ADMIN_TOKEN", ADMIN)
        .env(
            "APP_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
        .keel_toml("[jobs.http.\"app.http\"]\nurl = \"http://127.0.0.1:9/run\"\n")
        .jobs(|registry| {
            registry.register_fn("app.rust", |_ctx, _args| async { Ok(()) });
        })
        .spawn()
        .await
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> Reply {
    let request = app
        .client
        .request(Method::POST, app.url(path))
        .bearer_auth(token)
        .json(&body);
    let reply = send(request).await;
    if reply.status.as_u16() >= 400 {
        reply.well_formed_problem(&[SERVICE, ADMIN]);
    }
    reply
}

async fn job_count(app: &TestApp) -> usize {
    app.services()
        .db
        .list_jobs(&keel::jobs::JobFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .len()
}

keel_testkit::engine_test!(an_undeclared_kind_is_refused_by_both_enqueue_apis);
async fn an_undeclared_kind_is_refused_by_both_enqueue_apis(db: TestDb) {
    let app = app(db).await;
    for (path, token) in [("/v1/jobs", SERVICE), ("/admin/api/jobs", ADMIN)] {
        let reply = post(&app, path, token, json!({ "kind": "app.nobody" })).await;
        let problem = reply.problem(422, "validation-failed");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("kind app.nobody is not declared"),
            "{path}: {problem}"
        );
        assert_eq!(reply.fields(), ["kind".to_string()].into());
        // A bad field beside it is named in the same answer.
        let both = json!({ "kind": "app.nobody", "max_attempts": 0 });
        let reply = post(&app, path, token, both).await;
        let fields = ["kind".to_string(), "max_attempts".to_string()].into();
        assert_eq!(reply.fields(), fields, "{}", reply.text);
    }
    let batch = json!({ "jobs": [{ "kind": "diag.noop" }, { "kind": "app.nobody" }] });
    let reply = post(&app, "/v1/jobs", SERVICE, batch).await;
    reply.problem(422, "validation-failed");
    assert_eq!(reply.fields(), ["jobs[1].kind".to_string()].into());
    assert_eq!(job_count(&app).await, 0, "nothing enqueued");

    // Declared: built in, Keel's own, a Rust handler of this server, an HTTP kind; the API
    // process knows them though it runs no worker.
    for kind in ["diag.noop", "jobs.prune", "app.rust", "app.http"] {
        for (path, token) in [("/v1/jobs", SERVICE), ("/admin/api/jobs", ADMIN)] {
            let reply = post(&app, path, token, json!({ "kind": kind })).await;
            assert_eq!(reply.status, 201, "{kind} via {path}: {}", reply.text);
        }
    }
}

keel_testkit::engine_test!(declared_kinds_are_the_handlers_a_worker_runs);
async fn declared_kinds_are_the_handlers_a_worker_runs(db: TestDb) {
    let app = app(db).await;
    let services = app.services();
    let registry = keel::kinds::handlers(services, Registry::with_builtins());
    let handled: BTreeSet<String> = registry.kinds().map(str::to_string).collect();
    let declared = keel::kinds::declared_kinds(&services.settings, &Registry::with_builtins());
    assert_eq!(handled, declared);
    assert!(
        declared.contains("app.http") && declared.contains("privacy.erase"),
        "{declared:?}"
    );
}

#[test]
fn bad_http_kind_declarations_are_configuration_problems() {
    let toml = "[jobs.http.\"app.relative\"]\nurl = \"/run\"\n\
                [jobs.http.\"app.slow\"]\nurl = \"http://127.0.0.1:9/run\"\ntimeout = 60\n\
                [jobs.http.\"app.queue\"]\nurl = \"http://127.0.0.1:9/run\"\nqueue = \"nobody\"\n";
    let builder = TestApp::builder(TestDb::sqlite())
        .env("JOB_LEASE_SECONDS", "60")
        .keel_toml(toml);
    let error = builder.try_settings().expect_err("refused");
    for expected in [
        "\"app.relative\": url must be an absolute http(s) URL",
        "\"app.slow\": timeout must be from 1 to 59 s",
        "\"app.queue\": queue \"nobody\" is not served",
        "needs APP_WEBHOOK_SECRET",
    ] {
        assert!(error.contains(expected), "{expected} not in {error}");
    }
}
