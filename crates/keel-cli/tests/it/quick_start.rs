//! The quick start, as a new user runs it: `keel serve` in an empty directory with no
//! configuration at all, then `keel smoke` against it (SPEC §1, §2, §3 defaults).

use crate::common;

use std::time::{Duration, Instant};

use common::{bin, free_port, keel, keel_within};
use keel_testkit::KeelProcess;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const READY_WITHIN: Duration = Duration::from_secs(30);
/// "A few seconds": SIGTERM with nothing in flight must not wait out the 25 s grace period.
const EXIT_WITHIN: Duration = Duration::from_secs(5);

fn assert_clean_logs(process: &KeelProcess) {
    let logs = process.logs();
    assert!(!logs.contains("panicked"), "a panic was logged:\n{logs}");
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_in_an_empty_directory_runs_on_sqlite_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = KeelProcess::serve(&bin(), dir.path(), &[], &[]);
    server.wait_ready(READY_WITHIN).await;

    assert!(
        dir.path().join("keel.db").is_file(),
        "the default database keel.db was not created in the working directory:\n{}",
        server.logs()
    );

    let live = get(&server.url("/health/live")).await;
    assert_eq!(live.status(), 200);

    let health = get(&server.url("/health")).await;
    assert_eq!(health.status(), 200);
    let health: Value = health.json().await.expect("health JSON");
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["role"], "all", "{health}");
    assert_eq!(health["checks"]["database"]["status"], "ok", "{health}");

    let ready = get(&server.url("/health/ready")).await;
    assert_eq!(ready.status(), 200);

    let asked = Instant::now();
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(30)).await;
    let took = asked.elapsed();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM must end in exit 0:\n{}",
        server.logs()
    );
    assert!(
        took < EXIT_WITHIN,
        "SIGTERM took {took:?} with nothing in flight:\n{}",
        server.logs()
    );
    assert_clean_logs(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_also_exits_zero() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = KeelProcess::serve(&bin(), dir.path(), &[], &[]);
    server.wait_ready(READY_WITHIN).await;
    let asked = Instant::now();
    server.signal("INT");
    let status = server.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "{}", server.logs());
    assert!(asked.elapsed() < EXIT_WITHIN, "{}", server.logs());
}

async fn assert_worker_surface(server: &KeelProcess) {
    let ready = get(&server.url("/health/ready")).await;
    assert_eq!(ready.status(), 200);
    assert_eq!(get(&server.url("/health/live")).await.status(), 200);

    let health: Value = get(&server.url("/health"))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(health["role"], "worker", "{health}");

    let metrics = get(&server.url("/metrics")).await;
    assert_eq!(metrics.status(), 200, "a worker exposes /metrics");

    for path in [
        "/v1/me",
        "/v1/me/entitlements",
        "/admin/api/queues",
        "/docs",
    ] {
        let response = get(&server.url(path)).await;
        assert_eq!(response.status(), 404, "worker must not serve {path}");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            content_type.starts_with("application/problem+json"),
            "{path}: content-type {content_type:?}"
        );
        let body: Value = response.json().await.expect("problem JSON");
        assert_eq!(body["status"], 404, "{body}");
        assert!(body["title"].is_string(), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_role_serves_only_health_and_metrics() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = KeelProcess::serve(&bin(), dir.path(), &[], &["--role", "worker"]);
    server.wait_ready(READY_WITHIN).await;
    assert_worker_surface(&server).await;
    server.signal("TERM");
    assert_eq!(
        server.wait_exit(Duration::from_secs(30)).await.code(),
        Some(0),
        "{}",
        server.logs()
    );
    assert_clean_logs(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_role_from_process_role() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = KeelProcess::serve(&bin(), dir.path(), &[("PROCESS_ROLE", "worker")], &[]);
    server.wait_ready(READY_WITHIN).await;
    assert_worker_surface(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_flag_overrides_process_role() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = KeelProcess::serve(
        &bin(),
        dir.path(),
        &[("PROCESS_ROLE", "api")],
        &["--role", "worker"],
    );
    server.wait_ready(READY_WITHIN).await;
    let health: Value = get(&server.url("/health"))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(health["role"], "worker", "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_passes_against_the_quick_start() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = KeelProcess::serve(&bin(), dir.path(), &[], &[]);
    server.wait_ready(READY_WITHIN).await;
    let base = format!("http://127.0.0.1:{}", server.port);
    let work = tempfile::tempdir().expect("temporary directory");

    let json = keel_json_smoke(work.path(), &base);
    json.assert_code(0);
    let report = json.json();
    assert_eq!(report["passed"], true, "{report}");
    let checks = report["checks"].as_array().expect("checks array").clone();
    assert!(!checks.is_empty(), "{report}");
    for check in &checks {
        assert_eq!(check["passed"], true, "{check}");
        assert!(check["name"].is_string(), "{check}");
    }

    let text = keel(work.path(), &[], &["smoke", &base]);
    text.assert_code(0);
    let lines: Vec<&str> = text
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let check_lines: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("ok") || l.starts_with("FAIL"))
        .collect();
    assert_eq!(
        check_lines.len(),
        checks.len(),
        "one line per check:\n{}",
        text.describe()
    );
    for (line, check) in check_lines.iter().zip(&checks) {
        assert!(line.starts_with("ok"), "{}", text.describe());
        let name = check["name"].as_str().unwrap_or_default();
        assert!(line.contains(name), "line {line:?} should name {name:?}");
    }
    assert!(
        !text.stdout.contains("FAIL"),
        "no check may fail:\n{}",
        text.describe()
    );
    // A trailing base-URL slash is accepted.
    keel(work.path(), &[], &["smoke", &format!("{base}/")]).assert_code(0);
    // In development with nothing configured both providers are on (under the development
    // secret), so their routes exist.
    let required = keel(
        work.path(),
        &[],
        &["smoke", "--webhooks", "stripe,revenuecat", &base],
    );
    required.assert_code(0);
    server.signal("TERM");
    assert_eq!(
        server.wait_exit(Duration::from_secs(30)).await.code(),
        Some(0),
        "{}",
        server.logs()
    );

    // A provider that is not enabled: requiring its webhook route fails, naming it.
    let env = [
        ("BILLING_PROVIDERS", "revenuecat"),
        (
            "REVENUECAT_WEBHOOK_SECRET",
            "revenuecat-secret-for-smoke-0123456789",
        ),
    ];
    let mut server = KeelProcess::serve(&bin(), dir.path(), &env, &[]);
    server.wait_ready(READY_WITHIN).await;
    let base = format!("http://127.0.0.1:{}", server.port);
    let required = keel(work.path(), &[], &["smoke", "--webhooks", "stripe", &base]);
    required.assert_code(1);
    assert!(
        required.stdout.contains("provider not enabled"),
        "{}",
        required.describe()
    );
    server.signal("TERM");
    assert_eq!(
        server.wait_exit(Duration::from_secs(30)).await.code(),
        Some(0),
        "{}",
        server.logs()
    );
}

fn keel_json_smoke(dir: &std::path::Path, base: &str) -> common::Run {
    keel(dir, &[], &["smoke", "--json", base])
}

#[test]
fn smoke_fails_when_nothing_listens() {
    let work = tempfile::tempdir().expect("temporary directory");
    let base = format!("http://127.0.0.1:{}", free_port());
    let run = keel_within(
        work.path(),
        &[],
        &["smoke", "--timeout", "3", &base],
        Duration::from_secs(60),
    );
    run.assert_code(1);
    assert!(run.stdout.contains("FAIL"), "{}", run.describe());
    assert!(!run.stderr.contains("panicked"), "{}", run.describe());

    let json = keel(
        work.path(),
        &[],
        &["smoke", "--json", "--timeout", "3", &base],
    );
    json.assert_code(1);
    assert_eq!(json.json()["passed"], false, "{}", json.describe());
}

#[test]
fn smoke_refuses_a_non_url() {
    let work = tempfile::tempdir().expect("temporary directory");
    let run = keel(work.path(), &[], &["smoke", "not-a-url"]);
    run.assert_code(2);
    assert!(run.stderr.contains("not-a-url"), "{}", run.describe());
    assert!(!run.stderr.contains("panicked"), "{}", run.describe());
}

/// Opens a connection and sends only the start of a request's headers (a slow or stalled client).
async fn half_sent_request(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow")
        .await
        .expect("write");
    stream
}

/// A client that never finishes its request headers is not an in-flight request: it must not
/// hold the process for the whole grace period (25 s by default) after SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_does_not_hold_shutdown() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = KeelProcess::serve(&bin(), dir.path(), &[], &[]);
    server.wait_ready(READY_WITHIN).await;
    let _stalled = half_sent_request(server.port).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let asked = Instant::now();
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(40)).await;
    let took = asked.elapsed();
    assert_eq!(status.code(), Some(0), "{}", server.logs());
    assert!(
        took < Duration::from_secs(15),
        "a stalled client held SIGTERM for {took:?}:\n{}",
        server.logs()
    );
}

/// Slow-header (slowloris) protection: a connection whose request headers never complete is
/// closed by the server instead of being held open forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_is_disconnected() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = KeelProcess::serve(&bin(), dir.path(), &[], &[]);
    server.wait_ready(READY_WITHIN).await;
    let mut stalled = half_sent_request(server.port).await;

    let started = Instant::now();
    let mut buffer = [0u8; 512];
    let outcome = tokio::time::timeout(Duration::from_secs(40), stalled.read(&mut buffer)).await;
    assert!(
        outcome.is_ok(),
        "the server kept a half-sent request open for {:?}",
        started.elapsed()
    );
}

/// `keel … | head` closes the pipe early: the command ends quietly, never with a panic.
#[test]
fn a_closed_stdout_ends_the_command_without_a_panic() {
    let work = tempfile::tempdir().expect("temporary directory");
    let mut child = std::process::Command::new(bin())
        .args(["config", "check"])
        .current_dir(work.path())
        .env_clear()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start keel");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("keel ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        matches!(output.status.code(), Some(0) | Some(141)),
        "{:?} {stderr}",
        output.status
    );
}
