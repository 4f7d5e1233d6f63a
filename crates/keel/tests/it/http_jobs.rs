//! HTTP job kinds, end to end: the app's worker POSTs each job to a receiver on a free port and
//! reads its answer: 2xx completes, 5xx and 429 retry (not before `Retry-After`), another 4xx
//! discards at once, a slow or absent receiver and the job timeout retry.

use crate::http_jobs_support::{self, setup, DEADLINE};

use std::time::Duration;

use keel::jobs::{JobSpec, JobState};
use keel_testkit::{Answer, TestDb};
use serde_json::json;

const HOUR: Duration = Duration::from_secs(3600);

fn work() -> JobSpec {
    JobSpec::new("app.work", json!({ "to": "ada@example.com" }))
}

keel_testkit::engine_test!(a_2xx_completes_with_the_job_in_a_signed_body);
async fn a_2xx_completes_with_the_job_in_a_signed_body(db: TestDb) {
    let env = setup(db, 5, "queue = \"mail\"\nmax_attempts = 7\n[queues.mail]\n").await;
    let id = env.enqueue(work()).await;
    let row = env.wait_state(id, JobState::Completed).await;
    assert_eq!(
        (row.queue.as_str(), row.attempt, row.max_attempts),
        ("mail", 1, 7)
    );
    let deliveries = env.receiver.wait_for(1, DEADLINE).await;
    let delivery = &deliveries[0];
    assert_eq!(delivery.path, "/jobs/work");
    assert_eq!(delivery.header("content-type"), "application/json");
    assert_eq!(delivery.header("webhook-id"), format!("job_{id}"));
    let body = delivery.json();
    assert_eq!(body["id"], id);
    assert_eq!(body["kind"], "app.work");
    assert_eq!(body["args"], json!({ "to": "ada@example.com" }));
    assert_eq!(body["attempt"], 1);
    assert_eq!(body["max_attempts"], 7);
    assert_eq!(body["queue"], "mail");
    let enqueued_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(body["enqueued_at"].clone()).expect("enqueued_at is a time");
    assert!((row.created_at - enqueued_at).num_milliseconds().abs() < 1000);
    let now = env.app.clock().now().timestamp();
    http_jobs_support::verify(delivery, now).expect("the signature verifies");
}

keel_testkit::engine_test!(a_5xx_retries_with_the_same_webhook_id_then_completes);
async fn a_5xx_retries_with_the_same_webhook_id_then_completes(db: TestDb) {
    let env = setup(db, 5, "").await;
    env.receiver.script([Answer::status(500, "database down")]);
    let id = env.enqueue(work()).await;
    let row = env.wait_retry(id, 1).await;
    assert_eq!(row.last_error.as_deref(), Some("HTTP 500: database down"));
    env.app.clock().advance(HOUR);
    let row = env.wait_state(id, JobState::Completed).await;
    assert_eq!(row.attempt, 2);
    let deliveries = env.receiver.wait_for(2, DEADLINE).await;
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[0].header("webhook-id"), format!("job_{id}"));
    assert_eq!(deliveries[1].header("webhook-id"), format!("job_{id}"));
    assert_eq!(deliveries[1].json()["attempt"], 2);
}

keel_testkit::engine_test!(another_4xx_discards_at_once_keeping_status_and_body_only);
async fn another_4xx_discards_at_once_keeping_status_and_body_only(db: TestDb) {
    let env = setup(db, 5, "").await;
    let long = "x".repeat(3000);
    env.receiver.script([
        Answer::status(422, "no such address").with_header("x-app-secret", "hunter2-header"),
        Answer::status(404, &long),
    ]);
    let id = env.enqueue(work()).await;
    let row = env.wait_state(id, JobState::Discarded).await;
    assert_eq!(row.attempt, 1, "discarded on its first attempt: {row:?}");
    assert_eq!(row.last_error.as_deref(), Some("HTTP 422: no such address"));
    let all = format!("{row:?}");
    assert!(!all.contains("hunter2"), "no header reaches the job: {all}");

    let id = env.enqueue(work()).await;
    let row = env.wait_state(id, JobState::Discarded).await;
    let error = row.last_error.unwrap_or_default();
    assert!(error.starts_with("HTTP 404: xxx"), "{error}");
    assert!(error.len() <= 1024 + "HTTP 404: ".len(), "{}", error.len());
}

keel_testkit::engine_test!(retry_after_defers_the_next_attempt_at_least_that_long);
async fn retry_after_defers_the_next_attempt_at_least_that_long(db: TestDb) {
    let env = setup(db, 5, "").await;
    env.receiver
        .script([Answer::status(429, "slow down").with_header("retry-after", "600")]);
    let before = env.app.clock().now();
    let id = env.enqueue(work()).await;
    let row = env.wait_retry(id, 1).await;
    let wait = (row.run_at - before).num_seconds();
    assert!(
        (600..660).contains(&wait),
        "next attempt after {wait} s: {row:?}"
    );
    // Past the usual backoff of a first retry, but before Retry-After: still waiting.
    env.app.clock().advance(Duration::from_secs(300));
    // Longer than a worker's poll interval.
    env.stays(
        id,
        Duration::from_millis(1500),
        "not retried before Retry-After",
        |r| r.attempt == 1,
    )
    .await;
    assert_eq!(env.receiver.count(), 1);
    env.app.clock().advance(Duration::from_secs(360));
    let row = env.wait_state(id, JobState::Completed).await;
    assert_eq!(row.attempt, 2);
}

keel_testkit::engine_test!(a_slow_receiver_times_out_and_is_retried);
async fn a_slow_receiver_times_out_and_is_retried(db: TestDb) {
    let env = setup(db, 1, "").await;
    env.receiver.script([Answer::Hold]);
    let id = env.enqueue(work()).await;
    let row = env.wait_retry(id, 1).await;
    assert_eq!(row.last_error.as_deref(), Some("no answer within 1000 ms"));
    env.receiver.release();
    env.app.clock().advance(HOUR);
    env.wait_state(id, JobState::Completed).await;
}

keel_testkit::engine_test!(the_job_timeout_ends_a_slow_delivery);
async fn the_job_timeout_ends_a_slow_delivery(db: TestDb) {
    let env = setup(db, 20, "").await;
    env.receiver.script([Answer::Hold]);
    let id = env.enqueue(work().timeout(Duration::from_secs(1))).await;
    let row = env.wait_retry(id, 1).await;
    assert_eq!(row.last_error.as_deref(), Some("timed out after 1 s"));
    env.receiver.release();
    env.app.clock().advance(HOUR);
    env.wait_state(id, JobState::Completed).await;
}

keel_testkit::engine_test!(a_refused_connection_is_retried);
async fn a_refused_connection_is_retried(db: TestDb) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let toml = format!("[jobs.http.\"app.gone\"]\nurl = \"http://{closed}/jobs\"\ntimeout = 5\n");
    let app = keel_testkit::TestApp::builder(db)
        .env("APP_WEBHOOK_SECRET", http_jobs_support::SECRET)
        .keel_toml(&toml)
        .spawn()
        .await;
    let id = app
        .services()
        .queue
        .enqueue(JobSpec::new("app.gone", json!({})))
        .await
        .expect("enqueue")
        .id;
    let db = app.services().db.clone();
    let row = keel_testkit::eventually("the job is retryable", DEADLINE, || async {
        let row = crate::jobs_support::job(&db, id).await;
        (row.state == JobState::Retryable).then_some(row)
    })
    .await;
    assert_eq!(
        row.last_error.as_deref(),
        Some("the connection was refused or could not be made")
    );
}
