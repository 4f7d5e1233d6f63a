//! The gateway when things go wrong, across real processes: an app that is down or slow is
//! answered by Keel (502, 504, recovery), and bad rules and settings are each named at start.

use crate::common;
use crate::gateway::{
    assert_problem, fresh_connections, keel_in_front, token, LIMIT, METRICS_TOKEN,
};
use crate::gateway_support::Upstream;

use std::time::{Duration, Instant};

use keel_testkit::eventually;
use serde_json::Value;

use common::keel;

/// A value of `/proc/PID/status` in kB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_is_down_or_slow_is_answered_by_keel() {
    let mut upstream = Upstream::start().await;
    let addr = upstream.addr;
    let dir = tempfile::tempdir().unwrap();
    let keel = keel_in_front(
        dir.path(),
        &upstream.url(),
        "",
        &[
            ("UPSTREAM_TIMEOUT_SECONDS", "2"),
            ("UPSTREAM_HEALTH_PATH", "/healthz"),
            // Requests to the app run under the gateway's timeouts, not Keel's own.
            ("REQUEST_TIMEOUT_SECONDS", "1"),
        ],
    )
    .await;
    let client = fresh_connections();
    let ada = token("ada");
    let get = |path: &'static str| {
        let request = client.get(keel.url(path)).bearer_auth(&ada);
        async move {
            let response = request.send().await.expect("keel answers");
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").cloned();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
                retry_after,
            )
        }
    };

    // Down: 502, and readiness says so.
    let (status, _, _) = get("/api/whoami").await;
    assert_eq!(status, 200);
    upstream.stop().await;
    let (status, body, retry_after) = get("/api/whoami").await;
    assert_problem(status, &body, 502, "upstream-unavailable");
    assert!(retry_after.is_some());
    let ready = client.get(keel.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let report: Value = ready.json().await.unwrap();
    assert_eq!(report["checks"]["upstream"]["status"], "fail", "{report}");

    // Back: requests pass again, and readiness recovers.
    let _upstream = Upstream::restart(addr).await;
    eventually("the app is reached again", LIMIT, || async {
        get("/api/whoami").await.0 == 200
    })
    .await;
    let ready = client.get(keel.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    // Slow: 504 once the timeout passes, not a hang.
    let started = Instant::now();
    let (status, body, _) = get("/api/slow").await;
    assert_problem(status, &body, 504, "upstream-timeout");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(20),
        "{waited:?}"
    );

    let metrics = client
        .get(keel.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let timeout = "keel_gateway_upstream_errors_total{rule=\"default\",kind=\"timeout\"} 1";
    assert!(metrics.contains(timeout), "{timeout} missing:\n{metrics}");
    // The request while the app was down: refused at connect (or, had it raced the app's
    // closing, on a connection that broke).
    let down = ["connect", "broken"].iter().any(|kind| {
        metrics.contains(&format!(
            "keel_gateway_upstream_errors_total{{rule=\"default\",kind=\"{kind}\"}} 1"
        ))
    });
    assert!(
        down,
        "no upstream error counted while the app was down:\n{metrics}"
    );
}

#[test]
fn bad_rules_and_settings_are_each_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("keel.toml"),
        r#"
[[routes]]
path = "/api/**"

[[routes]]
path = "/api/pay"
methods = ["POST"]

[[routes]]
path = "api/*"

[[routes]]
path = "/paid/**"
auth = "none"
entitlement = "premium"

[[routes]]
path = "/limited"
rate_limit = "no-such-policy"
"#,
    )
    .unwrap();
    let env = [
        ("UPSTREAM_URL", "https://app.internal:3000"),
        ("UPSTREAM_SIGNING_SECRET", "s3cr3t-x9"),
        ("UPSTREAM_TIMEOUT_SECONDS", "0"),
        ("UPSTREAM_HEALTH_PATH", "healthz"),
    ];
    let run = keel(dir.path(), &env, &["config", "check", "--json"]);
    run.assert_code(1);
    let report = run.json();
    let problems: Vec<(String, String)> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["variable"].as_str().unwrap().to_string(),
                p["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let named = |variable: &str, words: &[&str]| {
        assert!(
            problems
                .iter()
                .any(|(v, m)| v == variable && words.iter().all(|w| m.contains(w))),
            "{variable} {words:?} not named in {problems:#?}"
        );
    };
    named("UPSTREAM_URL", &["http://"]);
    named("UPSTREAM_SIGNING_SECRET", &["16"]);
    named("UPSTREAM_TIMEOUT_SECONDS", &["from 1"]);
    named("UPSTREAM_HEALTH_PATH", &["/"]);
    named("KEEL_CONFIG", &["routes[2] (/api/pay)", "never used"]);
    named("KEEL_CONFIG", &["routes[3] (api/*)", "start with /"]);
    named("KEEL_CONFIG", &["routes[4] (/paid/**)", "entitlement"]);
    named("KEEL_CONFIG", &["routes[5] (/limited)", "no-such-policy"]);
    assert!(!run.output().contains("s3cr3t-x9"), "{}", run.describe());

    // `serve` refuses the same configuration with exit code 2.
    let serve = keel(dir.path(), &env, &["serve"]);
    serve.assert_code(2);

    // Rules without an upstream are a mistake too.
    let run = keel(dir.path(), &[], &["config", "check"]);
    run.assert_code(1);
    assert!(run.stdout.contains("UPSTREAM_URL"), "{}", run.describe());
}
