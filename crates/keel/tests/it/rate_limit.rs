//! Rate limiting with the in-memory backend, seen from outside: the draft's fields counting down
//! and resetting, 429 problems with Retry-After, per-user, per-tenant and per-IP keys,
//! `keel.toml` policies and route matching, money-moving routes, X-Forwarded-For through
//! TRUSTED_PROXIES only, and what is never limited.

use crate::rate_limit_support;

use std::time::Duration;

use keel::config::Source;
use keel::Settings;
use keel_testkit::FakeIdp;
use rate_limit_support::{get, metric, policy, send, spawn, spawn_with};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_count_down_and_reset_as_the_draft_says() {
    let app = spawn(&policy("ping", 3, "300s", "ip", &["GET /t/ping"]), &[]).await;

    // 3 per 300 s: one request's worth refills every 100 s. The app's clock moves time, so the
    // seconds a loaded machine takes between requests change no figure.
    for (i, remaining) in [2, 1, 0].into_iter().enumerate() {
        let r = get(&app, "/t/ping").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.policies(), vec!["\"ping\";q=3;w=300"]);
        assert_eq!(
            r.limit("ping"),
            (remaining, 100 * (i as u64 + 1)),
            "request {i}"
        );
        assert_eq!(r.header("retry-after"), None);
    }

    let refused = get(&app, "/t/ping").await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.limit("ping"), (0, 300));
    assert_eq!(refused.policies(), vec!["\"ping\";q=3;w=300"]);
    assert_eq!(refused.header("retry-after"), Some("100"));
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    let body = refused.json();
    assert_eq!(body["status"], 429);
    assert!(
        body["type"].as_str().unwrap().ends_with("/rate-limited"),
        "{body}"
    );
    assert!(!body["request_id"].as_str().unwrap().is_empty(), "{body}");
    assert!(body["detail"].as_str().unwrap().contains("ping"), "{body}");
    assert_eq!(
        metric(&app, "keel_rate_limited_total{policy=\"ping\"}").await,
        Some(1.0)
    );

    // After Retry-After, exactly one more.
    app.clock().advance(Duration::from_secs(100));
    let r = get(&app, "/t/ping").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.limit("ping").0, 0);
    assert_eq!(get(&app, "/t/ping").await.status, 429);

    // After t seconds the whole quota is back.
    let t = get(&app, "/t/ping").await.limit("ping").1;
    app.clock().advance(Duration::from_secs(t));
    let r = get(&app, "/t/ping").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.limit("ping"), (2, 100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_limited_apart_and_refused_tokens_are_counted_once() {
    let idp = FakeIdp::start().await;
    let app = spawn_with(&policy("default", 2, "1m", "user", &[]), &[], Some(&idp)).await;
    let alice = idp.token(&idp.claims("alice"));
    let bob = idp.token(&idp.claims("bob"));
    let me = |token: &str| send(app.client.get(app.url("/v1/me")).bearer_auth(token));

    for remaining in [1, 0] {
        let r = me(&alice).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["user_id"], "alice");
        assert_eq!(r.limit("default").0, remaining);
    }
    let refused = me(&alice).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.header("retry-after"), Some("30"));
    let r = me(&bob).await;
    assert_eq!((r.status, r.limit("default").0), (200, 1), "{}", r.text);

    // Without a valid token the key is the client IP: a bucket of its own, and the refusal is
    // the handler's 401, counted once.
    let mut expired = idp.claims("alice");
    expired["exp"] = json!(expired["iat"].as_i64().unwrap() - 3600);
    let r = me(&idp.token(&expired)).await;
    assert_eq!((r.status, r.limit("default").0), (401, 1), "{}", r.text);
    let r = get(&app, "/v1/me").await;
    assert_eq!((r.status, r.limit("default").0), (401, 0), "{}", r.text);
    let r = get(&app, "/v1/me").await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(
        metric(&app, "keel_auth_failures_total{reason=\"expired\"}").await,
        Some(1.0)
    );
    assert_eq!(
        metric(&app, "keel_auth_failures_total{reason=\"missing\"}").await,
        Some(1.0)
    );
    assert_eq!(
        metric(&app, "keel_rate_limited_total{policy=\"default\"}").await,
        Some(2.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keel_toml_policies_match_routes_and_money_moving_routes_are_sensitive() {
    let idp = FakeIdp::start().await;
    let toml = [
        policy("sensitive", 2, "15m", "user", &[]),
        policy("uploads", 1, "1m", "tenant", &["POST /t/files/*"]),
    ]
    .concat();
    let app = spawn_with(&toml, &[], Some(&idp)).await;
    let token = |sub: &str, org: Option<&str>| {
        let mut claims = idp.claims(sub);
        if let Some(org) = org {
            claims["org_id"] = json!(org);
        }
        idp.token(&claims)
    };
    let alice = token("alice", Some("acme"));
    let post = |path: &str, token: &str| {
        send(
            app.client
                .post(app.url(path))
                .bearer_auth(token.to_string()),
        )
    };

    // The money-moving route is under its path's policy and `sensitive` too.
    for remaining in [1, 0] {
        let r = post("/t/pay", &alice).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.limit("sensitive").0, remaining);
        assert!(r.limit("default").0 > 0);
        let policies = r.policies();
        assert!(
            policies.contains(&"\"sensitive\";q=2;w=900".to_string()),
            "{policies:?}"
        );
        assert!(
            policies.contains(&"\"default\";q=300;w=60".to_string()),
            "{policies:?}"
        );
    }
    let refused = post("/t/pay", &alice).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.header("retry-after"), Some("450"));
    assert!(refused.json()["detail"]
        .as_str()
        .unwrap()
        .contains("sensitive"));
    let r = send(app.client.get(app.url("/t/ping")).bearer_auth(&alice)).await;
    assert_eq!(r.status, 200, "other routes are not affected");

    // One quota per tenant, whoever of it calls; a user without a tenant counts alone.
    let r = post("/t/files/1", &alice).await;
    assert_eq!((r.status, r.limit("uploads").0), (200, 0), "{}", r.text);
    let r = post("/t/files/2", &token("carol", Some("acme"))).await;
    assert_eq!(r.status, 429, "{}", r.text);
    let r = post("/t/files/3", &token("dave", Some("globex"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = post("/t/files/4", &token("erin", None)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.limits().len(), 1, "only uploads: {:?}", r.limits());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_ignored_without_trusted_proxies() {
    let app = spawn(&policy("xff", 1, "1m", "ip", &["GET /t/ping"]), &[]).await;
    let from = |xff: &str| {
        send(
            app.client
                .get(app.url("/t/ping"))
                .header("x-forwarded-for", xff),
        )
    };
    assert_eq!(from("1.1.1.1").await.status, 200);
    // The same socket peer: a forged header does not buy a new quota.
    assert_eq!(from("2.2.2.2").await.status, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_honored_through_trusted_proxies() {
    let app = spawn(
        &policy("xff", 1, "1m", "ip", &["GET /t/ping"]),
        &[("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")],
    )
    .await;
    let from = |xff: &str| {
        send(
            app.client
                .get(app.url("/t/ping"))
                .header("x-forwarded-for", xff),
        )
    };
    assert_eq!(from("1.1.1.1").await.status, 200);
    assert_eq!(from("2.2.2.2").await.status, 200);
    assert_eq!(from("1.1.1.1").await.status, 429);
    // The client wrote the left entry; the right-most untrusted one counts.
    assert_eq!(from("9.9.9.9, 1.1.1.1, 10.1.2.3").await.status, 429);
    assert_eq!(from("1.1.1.1, 3.3.3.3").await.status, 200);
    // No header: the proxy's own address.
    assert_eq!(get(&app, "/t/ping").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_unmatched_paths_are_never_limited() {
    let app = spawn(&policy("default", 1, "1m", "user", &[]), &[]).await;
    for _ in 0..3 {
        for path in ["/health", "/health/live", "/health/ready", "/metrics"] {
            let r = get(&app, path).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            assert!(r.limits().is_empty() && r.policies().is_empty(), "{path}");
        }
        let r = get(&app, "/no/such/path").await;
        assert_eq!(r.status, 404);
        assert!(r.limits().is_empty(), "404s are not limited");
    }
    assert_eq!(get(&app, "/t/ping").await.status, 200);
    assert_eq!(get(&app, "/t/ping").await.status, 429);
    assert_eq!(
        metric(
            &app,
            "keel_rate_limit_backend_errors_total{backend=\"memory\"}"
        )
        .await,
        Some(0.0)
    );
}

fn load(toml: &str, env: &[(&str, &str)]) -> Result<Settings, Vec<(String, String)>> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keel.toml"), toml).unwrap();
    Settings::load(&Source::from_pairs(env.iter().copied(), dir.path())).map_err(|e| {
        e.problems
            .into_iter()
            .map(|p| (p.variable, p.message))
            .collect()
    })
}

#[test]
fn bad_settings_are_reported_by_name() {
    let settings = load(
        &policy("uploads", 20, "1m", "tenant", &["POST /v1/files/*"]),
        &[
            ("TRUSTED_PROXIES", "10.0.0.0/8,::1"),
            ("RATE_LIMIT_FAIL_CLOSED", "true"),
        ],
    )
    .unwrap();
    let rl = &settings.rate_limit;
    assert!(rl.fail_closed);
    assert_eq!(rl.trusted_proxies.len(), 2);
    let names: Vec<&str> = rl.policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["default", "webhooks", "sensitive", "uploads"]);

    let problems = load(
        &[
            policy("uploads", 20, "soon", "tenant", &["POST /v1/files/*"]),
            policy("health", 1, "1m", "ip", &["GET /health"]),
        ]
        .concat(),
        &[
            ("TRUSTED_PROXIES", "10.0.0.0/8, my-proxy"),
            ("RATE_LIMIT_FAIL_CLOSED", "maybe"),
            ("RATE_LIMIT_BACKEND", "redis"),
            ("REDIS_URL", "redis://:secret-password@cache:port"),
        ],
    )
    .unwrap_err();
    let named = |var: &str, text: &str| problems.iter().any(|(v, m)| v == var && m.contains(text));
    assert!(
        named("KEEL_CONFIG", "rate_limits.uploads.period"),
        "{problems:?}"
    );
    assert!(named("KEEL_CONFIG", "never limited"), "{problems:?}");
    assert!(named("TRUSTED_PROXIES", "my-proxy"), "{problems:?}");
    assert!(
        named("RATE_LIMIT_FAIL_CLOSED", "true or false"),
        "{problems:?}"
    );
    assert!(named("REDIS_URL", "malformed"), "{problems:?}");
    assert!(
        problems.iter().all(|(_, m)| !m.contains("secret-password")),
        "{problems:?}"
    );
}
