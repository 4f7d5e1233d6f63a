//! Rate limiting with the Redis backend: two processes (two apps) sharing one Redis enforce one
//! limit together, and a Redis that stops mid-test lets requests through (fail open, counted in
//! the metrics) or, with RATE_LIMIT_FAIL_CLOSED=true, turns them into 503s.
//!
//! These run when `KEEL_TEST_REDIS_URL` is set; the failure tests start a `redis-server` of their
//! own so that they can kill it. Policy names are unique per test, so parallel tests and earlier
//! runs sharing the Redis never meet.

use crate::rate_limit_support;

use std::time::Duration;

use rate_limit_support::{get, metric, policy, spawn, unique, PrivateRedis};

const BACKEND_ERRORS: &str = "keel_rate_limit_backend_errors_total{backend=\"redis\"}";

fn redis_env(url: &str) -> [(&str, &str); 2] {
    [("RATE_LIMIT_BACKEND", "redis"), ("REDIS_URL", url)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sharing_redis_enforce_one_limit() {
    let Some(url) = keel_testkit::redis_url() else {
        return;
    };
    let name = unique("shared");
    let toml = policy(&name, 5, "1m", "ip", &["GET /t/ping"]);
    let a = spawn(&toml, &redis_env(&url)).await;
    let b = spawn(&toml, &redis_env(&url)).await;

    // Alternating between the two, the remaining count goes down by one each time.
    for (i, remaining) in [4, 3, 2, 1, 0].into_iter().enumerate() {
        let app = if i % 2 == 0 { &a } else { &b };
        let r = get(app, "/t/ping").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.limit(&name).0, remaining, "request {i}");
        assert_eq!(r.policies(), vec![format!("\"{name}\";q=5;w=60")]);
    }
    for app in [&a, &b] {
        let r = get(app, "/t/ping").await;
        assert_eq!(r.status, 429, "{}", r.text);
        assert_eq!(r.header("retry-after"), Some("12"));
        assert_eq!(r.limit(&name), (0, 60));
    }
    assert_eq!(metric(&a, BACKEND_ERRORS).await, Some(0.0));
    let limited = format!("keel_rate_limited_total{{policy=\"{name}\"}}");
    assert_eq!(metric(&a, &limited).await, Some(1.0));
    assert_eq!(metric(&b, &limited).await, Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_headers_count_down_and_reset() {
    let Some(url) = keel_testkit::redis_url() else {
        return;
    };
    let name = unique("reset");
    let app = spawn(
        &policy(&name, 2, "2s", "ip", &["GET /t/ping"]),
        &redis_env(&url),
    )
    .await;
    assert_eq!(get(&app, "/t/ping").await.limit(&name), (1, 1));
    assert_eq!(get(&app, "/t/ping").await.limit(&name), (0, 2));
    let refused = get(&app, "/t/ping").await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), Some("1"));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = get(&app, "/t/ping").await;
    assert_eq!((r.status, r.limit(&name)), (200, (1, 1)), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_mid_test_fails_open_and_is_counted() {
    if keel_testkit::redis_url().is_none() {
        return;
    }
    let Some(mut redis) = PrivateRedis::start().await else {
        return;
    };
    let name = unique("open");
    let app = spawn(
        &policy(&name, 3, "1m", "ip", &["GET /t/ping"]),
        &redis_env(&redis.url()),
    )
    .await;
    let r = get(&app, "/t/ping").await;
    assert_eq!((r.status, r.limit(&name).0), (200, 2), "{}", r.text);

    redis.kill();
    for _ in 0..10 {
        let r = get(&app, "/t/ping").await;
        assert_eq!(r.status, 200, "fail open: {}", r.text);
        assert!(
            r.limits().is_empty(),
            "no counts are claimed: {:?}",
            r.headers
        );
    }
    let errors = metric(&app, BACKEND_ERRORS).await.unwrap();
    assert!(
        errors >= 10.0,
        "every unlimited request is counted: {errors}"
    );
    assert_eq!(
        get(&app, "/health").await.json()["checks"]["redis"]["status"],
        "fail"
    );

    // Back again (empty: it kept nothing), limiting resumes within a second.
    redis.restart().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = get(&app, "/t/ping").await;
    assert_eq!((r.status, r.limit(&name).0), (200, 2), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_with_fail_closed_answers_503() {
    if keel_testkit::redis_url().is_none() {
        return;
    }
    let Some(mut redis) = PrivateRedis::start().await else {
        return;
    };
    let name = unique("closed");
    let url = redis.url();
    let mut env = redis_env(&url).to_vec();
    env.push(("RATE_LIMIT_FAIL_CLOSED", "true"));
    let app = spawn(&policy(&name, 3, "1m", "ip", &["GET /t/ping"]), &env).await;
    assert_eq!(get(&app, "/t/ping").await.status, 200);

    redis.kill();
    for _ in 0..3 {
        let r = get(&app, "/t/ping").await;
        assert_eq!(r.status, 503, "{}", r.text);
        assert_eq!(r.header("retry-after"), Some("1"));
        let body = r.json();
        assert!(
            body["type"]
                .as_str()
                .unwrap()
                .ends_with("/rate-limit-unavailable"),
            "{body}"
        );
    }
    // Health and metrics are not limited, so they still answer.
    assert!(metric(&app, BACKEND_ERRORS).await.unwrap() >= 3.0);
    assert_eq!(get(&app, "/health/live").await.status, 200);
}
