//! Error reporting from the built binary to the testkit's fake Sentry over real HTTP: a failing
//! job and an `error` line arrive with their tags and breadcrumbs; Sentry's 429 with `Retry-After`
//! or `X-Sentry-Rate-Limits` holds reports back for its window (nothing is sent during it, later
//! reports are); what is queued at SIGTERM is sent before the process exits; nothing secret is
//! sent; `keel sentry test` exits 0, 1 or 2; an invalid `SENTRY_DSN` stops `keel serve`.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{bin, keel};
use keel_testkit::{eventually, free_port, FakeSentry, KeelProcess, Refusal};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token-for-sentry-tests-0123456789";
const CARD: &str = "4242424242424242";
const WAIT: Duration = Duration::from_secs(30);

/// `keel serve` reporting to `sentry`, ready.
async fn serve(dir: &Path, sentry: &FakeSentry, extra: &[(&str, &str)]) -> KeelProcess {
    let dsn = sentry.dsn();
    let mut env = vec![
        ("ADMIN_TOKEN", ADMIN),
        ("SENTRY_DSN", dsn.as_str()),
        ("SHUTDOWN_DRAIN_SECONDS", "0"),
        ("LOG_LEVEL", "info"),
    ];
    env.extend_from_slice(extra);
    let mut process = KeelProcess::serve(&bin(), dir, &env, &[]);
    process.wait_ready(WAIT).await;
    process
}

/// Enqueues a `diag.fail` job that fails its only attempt; returns its id.
async fn failing_job(process: &KeelProcess) -> i64 {
    let response = reqwest::Client::new()
        .post(process.url("/admin/api/jobs"))
        .bearer_auth(ADMIN)
        .json(&json!({"kind": "diag.fail", "args": {"times": 5, "card": CARD}, "max_attempts": 1}))
        .send()
        .await
        .expect("enqueue");
    assert_eq!(response.status(), 201);
    let job: Value = response.json().await.expect("job");
    job["id"].as_i64().expect("id")
}

/// Waits until the job `id` is discarded (its failure recorded).
async fn wait_discarded(process: &KeelProcess, id: i64) {
    let client = reqwest::Client::new();
    eventually("the job is discarded", WAIT, || async {
        let Ok(response) = client
            .get(process.url("/admin/api/jobs?state=discarded&kind=diag.fail&limit=1000"))
            .bearer_auth(ADMIN)
            .send()
            .await
        else {
            return false;
        };
        let list: Value = response.json().await.unwrap_or_default();
        list.as_array()
            .is_some_and(|jobs| jobs.iter().any(|job| job["id"] == id))
    })
    .await;
}

/// How many breadcrumbs of the event are `diag.fail`'s own log line.
fn planned_failures(event: &Value) -> usize {
    event["breadcrumbs"]["values"]
        .as_array()
        .map(|crumbs| {
            crumbs
                .iter()
                .filter(|c| c["message"] == "diag.fail: failing as planned")
                .count()
        })
        .unwrap_or_default()
}

fn is_job(event: &Value, id: i64) -> bool {
    event["tags"]["job_id"] == id.to_string().as_str()
}

/// Nothing secret or raw in any report: the admin token, the job's arguments, the DSN's key.
fn assert_nothing_secret(sentry: &FakeSentry) {
    let text = sentry.raw_text();
    for secret in [ADMIN, CARD, "Bearer"] {
        assert!(!text.contains(secret), "{secret} was reported:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_and_an_error_line_are_reported_with_their_tags() {
    let sentry = FakeSentry::start().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    // A schedule of a kind nobody runs: `keel serve` logs an error line about it at start-up.
    std::fs::write(
        dir.path().join("keel.toml"),
        "[[schedules]]\nname = \"orphan\"\ncron = \"0 * * * *\"\nkind = \"app.nobody\"\n",
    )
    .expect("write keel.toml");
    let process = serve(dir.path(), &sentry, &[]).await;

    let line = sentry
        .wait_for_event("the error line", WAIT, |e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("schedule orphan"))
        })
        .await;
    // `error` is the protocol's default level, left out of the payload.
    assert!(
        line["level"].is_null() || line["level"] == "error",
        "{line:#}"
    );
    assert_eq!(line["tags"]["service"], "api");
    assert_eq!(line["tags"]["role"], "all");
    assert!(line["logger"]
        .as_str()
        .unwrap_or_default()
        .starts_with("keel"));

    let id = failing_job(&process).await;
    let failure = sentry
        .wait_for_event("the failing job", WAIT, |e| is_job(e, id))
        .await;
    let exception = &failure["exception"]["values"][0];
    assert_eq!(exception["type"], "diag.fail failed", "{failure:#}");
    assert!(
        exception["value"]
            .as_str()
            .unwrap_or_default()
            .contains("planned failures"),
        "{failure:#}"
    );
    let frames = exception["stacktrace"]["frames"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        frames.iter().any(|f| f["function"]
            .as_str()
            .is_some_and(|f| f.contains("keel::jobs"))),
        "a stack through the worker: {failure:#}"
    );
    assert_eq!(failure["tags"]["kind"], "job_failed");
    assert_eq!(failure["tags"]["job_kind"], "diag.fail");
    assert_eq!(failure["tags"]["queue"], "default");
    assert_eq!(failure["tags"]["service"], "api");
    assert_eq!(failure["tags"]["role"], "all");
    // The job's own log line before the failure is its breadcrumb.
    assert_eq!(planned_failures(&failure), 1, "{failure:#}");
    // The failure's log line is not a second report, and a second job's report has its own
    // breadcrumbs only.
    wait_discarded(&process, id).await;
    let again = failing_job(&process).await;
    let second = sentry
        .wait_for_event("the second failing job", WAIT, |e| is_job(e, again))
        .await;
    assert_eq!(planned_failures(&second), 1, "{second:#}");
    let reports = sentry.events().iter().filter(|e| is_job(e, id)).count();
    assert_eq!(reports, 1, "{:#?}", sentry.events());
    assert_nothing_secret(&sentry);
}

/// Sentry answers the first report with `refusal` (a 30 s window, long enough for a loaded machine to fail one job within it): the next report, made during
/// the window, is not sent; one made after it is.
async fn reports_wait_out(refusal: Refusal) {
    const WINDOW: Duration = Duration::from_secs(30);
    let sentry = FakeSentry::start().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let process = serve(dir.path(), &sentry, &[]).await;
    sentry.refuse(refusal.clone());

    let refused = failing_job(&process).await;
    eventually("Sentry refuses a report", WAIT, || async {
        sentry.requests().iter().any(|r| r.status == 429)
    })
    .await;
    let window_end = sentry.requests()[0].at + WINDOW;
    sentry.accept();

    let during = failing_job(&process).await;
    wait_discarded(&process, during).await;
    assert!(
        Instant::now() < window_end,
        "the machine took the whole window to fail one job; nothing was tested"
    );
    assert_eq!(
        sentry.requests().len(),
        1,
        "nothing is sent during the window ({refusal:?})"
    );
    // The window is the condition: it ends at a time, not on an event.
    tokio::time::sleep_until((window_end + Duration::from_millis(200)).into()).await;

    let after = failing_job(&process).await;
    sentry
        .wait_for_event("the report after the window", WAIT, |e| is_job(e, after))
        .await;
    // Reports leave in order, so the one made during the window would have arrived before.
    let events = sentry.events();
    assert!(!events.iter().any(|e| is_job(e, during)), "{events:#?}");
    assert!(!events.iter().any(|e| is_job(e, refused)), "{events:#?}");
    assert_eq!(sentry.requests().len(), 2, "{:?}", sentry.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_holds_reports_back_for_its_window() {
    reports_wait_out(Refusal::RetryAfter(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_sentry_rate_limits_holds_error_reports_back_for_its_window() {
    reports_wait_out(Refusal::RateLimits("30:error:organization".into())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_queued_at_sigterm_are_sent_before_the_process_exits() {
    let sentry = FakeSentry::start().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut process = serve(dir.path(), &sentry, &[]).await;
    // A slow Sentry: the first report waits for an answer, the others queue behind it.
    sentry.hold();
    let mut jobs = Vec::new();
    for _ in 0..3 {
        jobs.push(failing_job(&process).await);
    }
    for id in &jobs {
        wait_discarded(&process, *id).await;
    }
    eventually("the first report is being sent", WAIT, || async {
        sentry.held_requests() == 1
    })
    .await;
    assert!(sentry.events().is_empty());

    let terminated = Instant::now();
    process.signal("TERM");
    eventually("the process flushes its reports", WAIT, || async {
        process.logs().contains("sending the queued error reports")
    })
    .await;
    sentry.release();
    let status = process.wait_exit(WAIT).await;
    assert!(status.success(), "{status:?}\n{}", process.logs());

    let envelopes = sentry.envelopes();
    for id in &jobs {
        let arrived = envelopes
            .iter()
            .find(|e| e.items.iter().any(|item| is_job(&item.json(), *id)))
            .unwrap_or_else(|| panic!("the report of job {id} was lost:\n{}", process.logs()));
        assert!(arrived.received_at > terminated);
    }
    assert_nothing_secret(&sentry);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keel_sentry_test_sends_one_event_and_says_how_it_went() {
    let sentry = FakeSentry::start().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let dsn = sentry.dsn();

    let sent = keel(dir.path(), &[("SENTRY_DSN", &dsn)], &["sentry", "test"]);
    sent.assert_code(0);
    let id = sent
        .stdout
        .split_whitespace()
        .find(|word| word.len() == 32 && word.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no event id printed:\n{}", sent.describe()))
        .to_string();
    let event = sentry
        .wait_for_event("the test event", WAIT, |e| e["event_id"] == id.as_str())
        .await;
    assert_eq!(event["tags"]["kind"], "test");
    assert_eq!(event["tags"]["service"], "api");
    assert!(event["exception"]["values"][0]["stacktrace"]["frames"]
        .as_array()
        .is_some_and(|f| !f.is_empty()));

    let json = keel(
        dir.path(),
        &[("SENTRY_DSN", &dsn)],
        &["sentry", "test", "--json"],
    );
    json.assert_code(0);
    assert_eq!(json.json()["delivered"], true, "{}", json.describe());

    // Sentry refuses it: exit 1, saying so.
    sentry.refuse(Refusal::RetryAfter(60));
    let refused = keel(dir.path(), &[("SENTRY_DSN", &dsn)], &["sentry", "test"]);
    refused.assert_code(1);
    assert!(
        refused.stderr.contains("refused") && refused.stderr.contains("429"),
        "{}",
        refused.describe()
    );
    sentry.accept();

    // Nothing listens there: exit 1.
    let nowhere = format!("http://somekey@127.0.0.1:{}/1", free_port());
    let unreachable = keel(dir.path(), &[("SENTRY_DSN", &nowhere)], &["sentry", "test"]);
    unreachable.assert_code(1);
    assert!(
        unreachable.stderr.contains("unreachable"),
        "{}",
        unreachable.describe()
    );

    // No DSN, or not a DSN: exit 2, naming the variable, never quoting its value.
    let unset = keel(dir.path(), &[], &["sentry", "test"]);
    unset.assert_code(2);
    assert!(
        unset.stderr.contains("SENTRY_DSN is not set"),
        "{}",
        unset.describe()
    );
    let invalid = keel(
        dir.path(),
        &[("SENTRY_DSN", "https://secret-dsn-key@")],
        &["sentry", "test"],
    );
    invalid.assert_code(2);
    assert!(
        invalid.stderr.contains("SENTRY_DSN"),
        "{}",
        invalid.describe()
    );
    assert!(
        !invalid.output().contains("secret-dsn-key"),
        "{}",
        invalid.describe()
    );
}

#[test]
fn an_invalid_dsn_stops_serve_naming_the_variable() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let env = [("SENTRY_DSN", "https://secret-dsn-key@sentry.example")];
    let served = common::keel_within(dir.path(), &env, &["serve"], Duration::from_secs(30));
    served.assert_code(2);
    assert!(
        served.stderr.contains("SENTRY_DSN"),
        "{}",
        served.describe()
    );
    assert!(
        !served.output().contains("secret-dsn-key"),
        "{}",
        served.describe()
    );
    let checked = keel(dir.path(), &env, &["config", "check"]);
    checked.assert_code(1);
    assert!(
        checked.stdout.contains("SENTRY_DSN"),
        "{}",
        checked.describe()
    );
    assert!(
        !checked.output().contains("secret-dsn-key"),
        "{}",
        checked.describe()
    );
}
