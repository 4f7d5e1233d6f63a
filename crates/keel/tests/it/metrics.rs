//! `/metrics` parses with the reference Prometheus client's parser (Python `prometheus_client`)
//! and holds the families operators alert on, from an api+worker process and a worker process.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keel_testkit::{TestApp, TestDb};

const TOKEN: &str = "metrics-token-metrics-token-metrics";

type Families = BTreeMap<String, Vec<BTreeMap<String, String>>>;

/// Whether the reference parser is importable.
fn reference_parser() -> bool {
    Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Family name → label sets seen, as parsed by `prometheus_client`. CI requires it
/// (`KEEL_TEST_REQUIRE_PROMETHEUS_PARSER=1`, set by .ci/run, which installs it); elsewhere, when it
/// is missing, a strict line check in Rust stands in, and the test says so.
fn parse(text: &str) -> Families {
    if !reference_parser() {
        assert!(
            std::env::var("KEEL_TEST_REQUIRE_PROMETHEUS_PARSER").is_err(),
            "python3 with prometheus_client is required (pip install prometheus-client)"
        );
        eprintln!(
            "note: prometheus_client is not installed; checking /metrics line by line instead"
        );
        return parse_lines(text);
    }
    parse_reference(text)
}

/// The exposition format line by line: `# HELP`/`# TYPE` comments, then `name{labels} value`.
fn parse_lines(text: &str) -> Families {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Families::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE line");
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (
                name,
                rest.strip_suffix('}')
                    .unwrap_or_else(|| panic!("bad labels in {line:?}")),
            ),
            None => (series, ""),
        };
        let mut map = BTreeMap::new();
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once("=\"")
                .unwrap_or_else(|| panic!("bad label in {line:?}"));
            map.insert(
                k.trim_start_matches(',').to_string(),
                v.trim_end_matches('"').to_string(),
            );
        }
        let family = ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| types.contains_key(*base) || *suffix == "_total")
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family) || types.contains_key(name),
            "{name} has no TYPE line"
        );
        out.entry(family.to_string()).or_default().push(map);
    }
    out
}

fn parse_reference(text: &str) -> Families {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    out.setdefault(family.name, [])
    for sample in family.samples:
        out[family.name].append(dict(sample.labels, __sample__=sample.name))
print(json.dumps(out))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is required for this test");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parser rejected /metrics (pip install prometheus-client if it is missing):\n{}\n---\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn scrape(app: &TestApp) -> String {
    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    response.text().await.unwrap()
}

fn has(
    families: &BTreeMap<String, Vec<BTreeMap<String, String>>>,
    name: &str,
    label: Option<(&str, &str)>,
) -> bool {
    families.get(name).is_some_and(|samples| {
        label.is_none_or(|(k, v)| {
            samples
                .iter()
                .any(|s| s.get(k).map(String::as_str) == Some(v))
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_process_exposes_requests_auth_and_jobs() {
    let app = TestApp::builder(TestDb::sqlite())
        .env("METRICS_TOKEN", TOKEN)
        .env("ADMIN_TOKEN", "admin-token-admin-token-admin-token")
        .env(
            "REVENUECAT_WEBHOOK_SECRET",
            "revenuecat-secret-for-the-metrics-test",
        )
        .spawn()
        .await;
    // A forged webhook: counted by provider and outcome.
    let forged = app
        .client
        .post(app.url("/webhooks/revenuecat"))
        .header("authorization", "Bearer forged")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(
        app.get("/metrics").await.status(),
        401,
        "the token is required when set"
    );
    assert_eq!(app.get("/v1/me").await.status(), 401);
    let enqueued = app
        .client
        .post(app.url("/admin/api/jobs"))
        .bearer_auth("admin-token-admin-token-admin-token")
        .json(&serde_json::json!({"kind": "diag.noop", "queue": "default"}))
        .send()
        .await
        .unwrap();
    assert_eq!(enqueued.status(), 201);
    let started = Instant::now();
    let families = loop {
        let families = parse(&scrape(&app).await);
        if has(
            &families,
            "keel_jobs_completed",
            Some(("kind", "diag.noop")),
        ) || started.elapsed() > Duration::from_secs(10)
        {
            break families;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for (name, label) in [
        ("keel_build_info", Some(("role", "all"))),
        ("keel_http_requests", Some(("route", "/v1/me"))),
        ("keel_http_requests", Some(("status", "401"))),
        (
            "keel_http_request_duration_seconds",
            Some(("route", "/admin/api/jobs")),
        ),
        ("keel_http_requests_in_flight", None),
        ("keel_auth_failures", Some(("reason", "missing"))),
        ("keel_jobs_enqueued", Some(("kind", "diag.noop"))),
        ("keel_jobs_completed", Some(("kind", "diag.noop"))),
        ("keel_job_duration_seconds", Some(("kind", "diag.noop"))),
        ("keel_jobs", Some(("state", "completed"))),
        (
            "keel_queue_oldest_waiting_seconds",
            Some(("queue", "default")),
        ),
        ("keel_schedule_firings", Some(("schedule", "jobs.prune"))),
        ("keel_webhooks", Some(("outcome", "unauthorized"))),
        ("keel_webhooks", Some(("provider", "revenuecat"))),
        ("process_resident_memory_bytes", None),
        ("process_cpu_seconds", None),
    ] {
        assert!(
            has(&families, name, label),
            "{name} {label:?} missing; families: {:?}",
            families.keys()
        );
    }
    let text = scrape(&app).await;
    assert!(
        !text.contains("admin-token-admin-token"),
        "no secret in the exposition"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_process_exposes_its_metrics() {
    let app = TestApp::builder(TestDb::sqlite())
        .env("METRICS_TOKEN", TOKEN)
        .env("PROCESS_ROLE", "worker")
        .spawn()
        .await;
    // Queue depth is read at scrape: it has samples once the worker's scheduler fired the
    // built-in schedules.
    let started = Instant::now();
    let families = loop {
        let families = parse(&scrape(&app).await);
        if has(&families, "keel_jobs", None) || started.elapsed() > Duration::from_secs(10) {
            break families;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(has(&families, "keel_build_info", Some(("role", "worker"))));
    assert!(has(&families, "keel_jobs", None), "{:?}", families.keys());
    assert!(has(&families, "process_resident_memory_bytes", None));
}
