//! Error reports from the library, in process, through the Sentry SDK to the testkit's fake Sentry
//! (the envelope protocol over real HTTP): a handler's panic and a job's panic arrive as exceptions
//! with the stack that panicked, a job's final failure as an exception with its stack, a 5xx as
//! an event; each carries its request's or job's tags, and none carries a secret or a payload.
//! Rate limits, shutdown and `keel sentry test` are tested against the built binary
//! (`keel-cli/tests/it/sentry.rs`).
//!
//! Error reporting is set up once per process, so this binary has one test that reports.

use std::time::Duration;

use axum::body::Bytes;
use axum::routing::{get, post};
use axum::Router;
use keel::auth::Principal;
use keel::http::{ApiError, AppState};
use keel::jobs::{Job, JobContext, JobFailure};
use keel_testkit::{FakeIdp, FakeSentry, TestApp, TestDb};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token-admin-token-admin-token";
const WAIT: Duration = Duration::from_secs(20);
const CARD: &str = "4242424242424242";

/// A job that panics.
#[derive(Debug, Serialize, Deserialize)]
struct Explode {
    card: String,
}

impl Job for Explode {
    const KIND: &'static str = "test.explode";

    async fn run(self, _ctx: JobContext) -> Result<(), JobFailure> {
        explode_now()
    }
}

#[inline(never)]
fn explode_now() -> Result<(), JobFailure> {
    panic!("the job blew up")
}

async fn panicking(_user: Principal, _body: Bytes) -> &'static str {
    break_the_handler()
}

#[inline(never)]
fn break_the_handler() -> &'static str {
    panic!("the handler broke")
}

fn functions(exception: &Value) -> Vec<String> {
    exception["stacktrace"]["frames"]
        .as_array()
        .map(|frames| {
            frames
                .iter()
                .filter_map(|f| f["function"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn enqueue(app: &TestApp, kind: &str, args: Value) -> i64 {
    let response = app
        .client
        .post(app.url("/admin/api/jobs"))
        .bearer_auth(ADMIN)
        .json(&json!({"kind": kind, "args": args, "max_attempts": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap()
}

/// Waits until the job's outcome is written (a job with one attempt is then discarded).
async fn wait_finished(app: &TestApp, id: i64) {
    keel_testkit::eventually("the job's outcome is written", WAIT, || async {
        !app.pending_jobs().await.contains(&id)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_failures_and_5xx_are_reported_with_their_tags_and_no_secret() {
    let sentry = FakeSentry::start().await;
    let idp = FakeIdp::start().await;
    let routes: Router<AppState> = Router::new()
        .route(
            "/boom",
            get(|_user: Principal| async { Err::<(), _>(ApiError::internal()) }),
        )
        .route("/panic", post(panicking));
    let app = TestApp::builder(TestDb::sqlite())
        .env("SENTRY_DSN", &sentry.dsn())
        .env("SENTRY_ENVIRONMENT", "staging-test")
        .env("SENTRY_RELEASE", "9.9.9")
        .env("ADMIN_TOKEN", ADMIN)
        .env("AUTH_JWKS_URL", &idp.jwks_url())
        .routes(routes)
        .jobs(|registry| {
            registry.register::<Explode>();
        })
        .spawn()
        .await;
    let token = idp.token(&idp.claims("user-42"));

    // A handler's panic: an exception with the stack that panicked, the request's tags, the user.
    let response = app
        .client
        .post(app.url("/panic?access_token=query-secret-value"))
        .bearer_auth(&token)
        .header("cookie", "session=cookie-secret-value")
        .json(&json!({"card_number": CARD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let panic = sentry
        .wait_for_event("handler panic", WAIT, |e| {
            e["tags"]["request_id"] == request_id.as_str()
        })
        .await;
    let exception = &panic["exception"]["values"][0];
    assert_eq!(exception["type"], "panic", "{panic:#}");
    assert!(
        exception["value"]
            .as_str()
            .unwrap()
            .contains("the handler broke"),
        "{panic:#}"
    );
    assert_eq!(exception["mechanism"]["handled"], true);
    let frames = functions(exception);
    assert!(
        frames.iter().any(|f| f.contains("break_the_handler")),
        "the stack that panicked: {frames:#?}"
    );
    assert_eq!(panic["tags"]["kind"], "panic");
    assert_eq!(panic["tags"]["service"], "api");
    assert_eq!(panic["tags"]["role"], "all");
    assert_eq!(panic["tags"]["route"], "/panic");
    assert_eq!(panic["user"], json!({"id": "user-42"}));
    assert_eq!(panic["environment"], "staging-test");
    assert_eq!(panic["release"], "9.9.9");

    // A 5xx answer: an event with the route and status; the panic above was not reported twice.
    let boom = app
        .client
        .get(app.url("/boom"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(boom.status(), 500);
    let boom_id = boom.headers()["x-request-id"].to_str().unwrap().to_string();
    let failed = sentry
        .wait_for_event("5xx", WAIT, |e| e["tags"]["request_id"] == boom_id.as_str())
        .await;
    assert_eq!(failed["tags"]["kind"], "http_5xx");
    assert_eq!(failed["tags"]["route"], "/boom");
    assert_eq!(failed["tags"]["status"], "500");
    assert_eq!(failed["message"], "GET /boom answered 500", "{failed:#}");
    assert_eq!(failed["user"], json!({"id": "user-42"}));
    let reports_of_the_panic = sentry
        .events()
        .iter()
        .filter(|e| e["tags"]["request_id"] == request_id.as_str())
        .count();
    assert_eq!(reports_of_the_panic, 1, "a panic is reported once");

    // A job's panic: an exception with the job's stack and tags, reported once.
    let exploded = enqueue(&app, Explode::KIND, json!({"card": CARD})).await;
    let panic = sentry
        .wait_for_event("job panic", WAIT, |e| {
            e["tags"]["job_id"] == exploded.to_string().as_str()
        })
        .await;
    let exception = &panic["exception"]["values"][0];
    assert_eq!(exception["type"], "panic", "{panic:#}");
    assert!(exception["value"]
        .as_str()
        .unwrap()
        .contains("the job blew up"));
    let frames = functions(exception);
    assert!(
        frames.iter().any(|f| f.contains("explode_now")),
        "the stack that panicked: {frames:#?}"
    );
    assert_eq!(panic["tags"]["job_kind"], "test.explode");
    assert_eq!(panic["tags"]["queue"], "default");
    assert_eq!(panic["tags"]["attempt"], "1");
    assert_eq!(panic["tags"]["service"], "api");
    wait_finished(&app, exploded).await;

    // A job's final failure (an error it returned): an exception with a stack and the job's tags.
    let failing = enqueue(&app, "diag.fail", json!({"times": 5})).await;
    let failure = sentry
        .wait_for_event("job failure", WAIT, |e| {
            e["tags"]["job_id"] == failing.to_string().as_str()
        })
        .await;
    let exception = &failure["exception"]["values"][0];
    assert_eq!(exception["type"], "diag.fail failed", "{failure:#}");
    assert!(
        exception["value"]
            .as_str()
            .unwrap()
            .contains("planned failures"),
        "{failure:#}"
    );
    assert!(!functions(exception).is_empty(), "{failure:#}");
    assert_eq!(failure["tags"]["kind"], "job_failed");
    assert_eq!(failure["tags"]["job_kind"], "diag.fail");
    assert_eq!(failure["fingerprint"], json!(["job_failed", "diag.fail"]));
    // Reports leave in order: the exploded job's would have arrived before this one.
    let reports_of_the_explosion = sentry
        .events()
        .iter()
        .filter(|e| e["tags"]["job_id"] == exploded.to_string().as_str())
        .count();
    assert_eq!(
        reports_of_the_explosion, 1,
        "a job's panic is reported once"
    );

    // Nothing secret or personal in any envelope.
    let everything = sentry.raw_text();
    for secret in [
        token.as_str(),
        ADMIN,
        "query-secret-value",
        "cookie-secret-value",
        CARD,
        "Bearer",
    ] {
        assert!(!everything.contains(secret), "{secret} was reported");
    }
    for envelope in sentry.envelopes() {
        assert!(
            envelope
                .auth
                .contains(&format!("sentry_key={}", keel_testkit::sentry::PUBLIC_KEY)),
            "{}",
            envelope.auth
        );
    }
}
