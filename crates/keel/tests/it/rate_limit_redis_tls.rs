//! The Redis backend and the `/health` probe against a Redis that speaks TLS only (`rediss://`),
//! whose certificate is signed by a CA of the test's own (`REDIS_CA_FILE`), reached at `[::1]`
//! with a password full of reserved characters; and a burst of checks sharing one connection.

use crate::rate_limit_support;

use std::time::Duration;

use rate_limit_support::tls::{TlsRedis, PASSWORD};
use rate_limit_support::{get, metric, policy, spawn, unique};

const BACKEND_ERRORS: &str = "keel_rate_limit_backend_errors_total{backend=\"redis\"}";

fn tls_env(redis: &TlsRedis) -> Vec<(String, String)> {
    vec![
        ("RATE_LIMIT_BACKEND".into(), "redis".into()),
        ("RATE_LIMIT_FAIL_CLOSED".into(), "true".into()),
        ("REDIS_URL".into(), redis.url()),
        (
            "REDIS_CA_FILE".into(),
            redis.ca_file().to_str().expect("utf-8 path").into(),
        ),
    ]
}

fn borrowed(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limiter_and_readiness_work_over_tls_at_an_ipv6_address_with_an_encoded_password() {
    if keel_testkit::redis_url().is_none() {
        return;
    }
    let Some(redis) = TlsRedis::start().await else {
        return;
    };
    assert!(redis.url().starts_with("rediss://") && redis.url().contains("@[::1]:"));
    assert!(!redis.url().contains(PASSWORD));
    let name = unique("tls");
    let env = tls_env(&redis);
    let app = spawn(
        &policy(&name, 3, "1m", "ip", &["GET /t/ping"]),
        &borrowed(&env),
    )
    .await;

    for remaining in [2, 1, 0] {
        let r = get(&app, "/t/ping").await;
        assert_eq!((r.status, r.limit(&name).0), (200, remaining), "{}", r.text);
    }
    assert_eq!(get(&app, "/t/ping").await.status, 429);
    assert_eq!(metric(&app, BACKEND_ERRORS).await, Some(0.0));

    // The count is in the TLS Redis, under Keel's key.
    let mut connection = redis.connection().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("keel:rl:{name}:*"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");

    // The probe reaches it the same way: healthy, and ready although the limiter fails closed.
    let health = get(&app, "/health").await.json();
    assert_eq!(health["checks"]["redis"]["status"], "ok", "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(get(&app, "/health/ready").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_redis_whose_ca_is_not_trusted_is_neither_healthy_nor_used() {
    if keel_testkit::redis_url().is_none() {
        return;
    }
    let Some(redis) = TlsRedis::start().await else {
        return;
    };
    let name = unique("untrusted");
    // No REDIS_CA_FILE: only the public authorities are trusted, which did not sign this server.
    let env = [("RATE_LIMIT_BACKEND", "redis"), ("REDIS_URL", &redis.url())];
    let app = spawn(&policy(&name, 3, "1m", "ip", &["GET /t/ping"]), &env).await;
    let r = get(&app, "/t/ping").await;
    assert_eq!(r.status, 200, "fail open: {}", r.text);
    assert!(
        r.limits().is_empty(),
        "no counts are claimed: {:?}",
        r.headers
    );
    assert_eq!(metric(&app, BACKEND_ERRORS).await, Some(1.0));
    let health = get(&app, "/health").await.json();
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["checks"]["redis"]["status"], "fail", "{health}");
    let error = health["checks"]["redis"]["error"].as_str().unwrap();
    assert!(!error.contains(PASSWORD), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_checks_shares_one_connection() {
    if keel_testkit::redis_url().is_none() {
        return;
    }
    let Some(redis) = TlsRedis::start().await else {
        return;
    };
    let name = unique("burst");
    // Failing open: on a loaded machine a check may miss its 250 ms deadline, which must not
    // open a connection either. A day's period refills one request every 8.6 s, so the burst's
    // counts are still there however slowly a loaded machine sends it.
    let env: Vec<_> = tls_env(&redis)
        .into_iter()
        .filter(|(k, _)| k != "RATE_LIMIT_FAIL_CLOSED")
        .collect();
    let app = spawn(
        &policy(&name, 10_000, "1d", "ip", &["GET /t/ping"]),
        &borrowed(&env),
    )
    .await;
    // Connected once a check is decided by Redis (it then carries the policy's counts).
    keel_testkit::eventually(
        "a check decided by Redis",
        Duration::from_secs(10),
        || async { !get(&app, "/t/ping").await.limits().is_empty() },
    )
    .await;
    let accepted_before = redis.info("total_connections_received").await;

    let burst = (0..200).map(|_| {
        let (client, url) = (app.client.clone(), app.url("/t/ping"));
        tokio::spawn(async move { client.get(url).send().await.map(|r| r.status().as_u16()) })
    });
    let statuses: Vec<u16> = join_all(burst).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let remaining = keel_testkit::eventually(
        "a check decided by Redis",
        Duration::from_secs(10),
        || async { get(&app, "/t/ping").await.limits().first().map(|l| l.1) },
    )
    .await;
    assert!(
        remaining < 10_000 - 2,
        "the burst was counted in Redis: {remaining}"
    );

    // Two connections at most were opened meanwhile: the ones this test opened to ask.
    let accepted = redis.info("total_connections_received").await - accepted_before;
    assert!(
        accepted <= 2,
        "{accepted} connections opened during the burst"
    );
    let connected = redis.info("connected_clients").await;
    assert!(
        connected <= 3,
        "{connected} clients connected after the burst"
    );
}

async fn join_all(
    handles: impl Iterator<Item = tokio::task::JoinHandle<reqwest::Result<u16>>>,
) -> Vec<u16> {
    let mut statuses = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        statuses.push(handle.await.unwrap().unwrap());
    }
    statuses
}
