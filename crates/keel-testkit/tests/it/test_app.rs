//! `TestApp` hands a test the app's services, its clock and its pending jobs.

use std::time::Duration;

use keel::jobs::{JobFilter, JobSpec, JobState};
use keel_testkit::{TestApp, TestDb};
use serde_json::json;

const HOUR: Duration = Duration::from_secs(3600);

async fn state(app: &TestApp, id: i64) -> JobState {
    let filter = JobFilter {
        id: Some(id),
        limit: 1,
        ..Default::default()
    };
    let rows = app
        .services()
        .db
        .list_jobs(&filter)
        .await
        .expect("list jobs");
    rows.first()
        .unwrap_or_else(|| panic!("job {id} does not exist"))
        .state
}

keel_testkit::engine_test!(pending_jobs_run_once_due_by_the_apps_clock);
async fn pending_jobs_run_once_due_by_the_apps_clock(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let queue = &app.services().queue;
    let now = queue
        .enqueue(JobSpec::new("diag.noop", json!({})))
        .await
        .expect("enqueue")
        .id;
    let in_an_hour = app.clock().now() + chrono::Duration::hours(1);
    let later = queue
        .enqueue(JobSpec::new("diag.noop", json!({})).run_at(in_an_hour))
        .await
        .expect("enqueue")
        .id;

    app.run_pending_jobs().await;
    assert_eq!(state(&app, now).await, JobState::Completed);
    assert_eq!(state(&app, later).await, JobState::Scheduled);
    assert!(!app.pending_jobs().await.contains(&later));

    // Moving the test's clock moves the app's: the later job is due, and runs.
    app.clock().advance(HOUR + Duration::from_secs(1));
    assert!(app.pending_jobs().await.contains(&later));
    app.run_pending_jobs().await;
    assert_eq!(state(&app, later).await, JobState::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "runs no worker")]
async fn run_pending_jobs_needs_an_app_that_runs_jobs() {
    let app = TestApp::builder(TestDb::sqlite())
        .env("PROCESS_ROLE", "api")
        .spawn()
        .await;
    app.run_pending_jobs().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_sends_the_apps_token_and_eventually_returns_the_value() {
    let token = "admin-token-for-tests-0123456789abcdef";
    let app = TestApp::builder(TestDb::sqlite())
        .env("ADMIN_TOKEN", token)
        .spawn()
        .await;
    assert_eq!(app.admin_token(), Some(token));
    let r = keel_testkit::admin(&app, reqwest::Method::GET, "/admin/api/queues", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = keel_testkit::admin(&app, reqwest::Method::GET, "/admin/api/nothing-here", None).await;
    r.problem(404, "not-found");

    let mut polls = 0;
    let value = keel_testkit::eventually("the third poll", Duration::from_secs(5), || {
        polls += 1;
        let n = polls;
        async move { (n >= 3).then_some(n) }
    })
    .await;
    assert_eq!(value, 3);
}
