//! The issuer's keys over real HTTP (SPEC §3 `AUTH_JWKS_URL`, §4 health): rotation without a
//! restart, the once-a-minute refetch on unknown key ids, outages of the issuer (warm and cold),
//! and cached verifications that end when the token expires.

use crate::auth_support;

use std::time::{Duration, Instant};

use auth_support::*;
use keel_testkit::{eventually, FakeIdp, TestDb};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_keys_are_fetched_once_per_minute() {
    let idp = FakeIdp::start().await;
    let app = idp_app(TestDb::sqlite(), &idp).spawn().await;
    me(&app, &idp.token(&idp.claims("u-before"))).await;
    let fetched = idp.fetches();
    assert!(fetched >= 1, "the keys were fetched at start");

    // The issuer rotates to a key the app has never seen: the first token naming it refetches.
    idp.publish(&[KeyId::Rsa2]);
    let claims = idp.claims("u-rotated");
    let rotated = idp.sign(Alg::Rs256(KeyId::Rsa2), Some("rsa-2"), &claims);
    let body = me(&app, &rotated).await;
    assert_eq!(body["user_id"], "u-rotated");
    assert_eq!(idp.fetches(), fetched + 1, "one refetch for the new kid");
    let r = get_as(&app, "/v1/auth/check", &rotated).await;
    assert_eq!(r.header("x-user-id"), Some("u-rotated"), "{}", r.text);
    assert_eq!(idp.fetches(), fetched + 1, "a known kid fetches nothing");

    // Another unknown kid within the minute is refused without asking the issuer again.
    for kid in ["rsa-3", "rsa-4"] {
        let token = idp.sign(Alg::Rs256(KeyId::Rsa2), Some(kid), &claims);
        let r = get_as(&app, "/v1/me", &token).await;
        r.refused(Challenge::Invalid, &secrets_of(&token, &claims), kid);
    }
    // So is a key dropped by the rotation (the JWKS is the whole truth).
    let gone = idp.sign(Alg::Es256, Some("ec-1"), &claims);
    let r = get_as(&app, "/v1/me", &gone).await;
    r.refused(
        Challenge::Invalid,
        &secrets_of(&gone, &claims),
        "dropped key",
    );
    assert_eq!(
        idp.fetches(),
        fetched + 1,
        "no second refetch within a minute"
    );
    let counts = failures(&app).await;
    assert!(counts["unknown_key"] >= 3, "{counts:?}");
    assert_eq!(counts["unavailable"], 0, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_keys_keep_verifying_while_the_issuer_is_down() {
    let idp = FakeIdp::start().await;
    let app = idp_app(TestDb::sqlite(), &idp).spawn().await;
    idp.set_down(true);
    let fetched = idp.fetches();

    // An unknown kid makes the app try the issuer, which fails; the keys held stay in use.
    let claims = idp.claims("u-outage");
    let unknown = idp.sign(Alg::Rs256(KeyId::Rsa1), Some("rsa-9"), &claims);
    let r = get_as(&app, "/v1/me", &unknown).await;
    r.refused(
        Challenge::Invalid,
        &secrets_of(&unknown, &claims),
        "unknown kid, issuer down",
    );

    for (name, token) in [
        ("RS256", idp.token(&claims)),
        ("ES256", idp.sign(Alg::Es256, Some("ec-1"), &claims)),
        ("EdDSA", idp.sign(Alg::EdDsa, Some("ed-1"), &claims)),
    ] {
        let r = get_as(&app, "/v1/me", &token).await;
        assert_eq!(r.status, 200, "{name}: {}", r.text);
        assert_eq!(r.body["user_id"], "u-outage");
        let r = get_as(&app, "/v1/auth/check", &token).await;
        assert_eq!(r.status, 200, "{name}: {}", r.text);
    }
    assert_eq!(idp.fetches(), fetched, "nothing was served while down");
    let ready = send(app.client.get(app.url("/health/ready"))).await;
    assert_eq!(
        ready.status, 200,
        "keys held keep the app ready: {}",
        ready.text
    );
    let health = send(app.client.get(app.url("/health"))).await;
    assert_eq!(
        health.body["checks"]["auth"]["status"], "ok",
        "{}",
        health.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_start_with_the_issuer_down_turns_ready_once_it_is_back() {
    let idp = FakeIdp::start().await;
    idp.set_down(true);
    let app = idp_app(TestDb::sqlite(), &idp).no_wait().spawn().await;
    let started = Instant::now();

    let ready_url = app.url("/health/ready");
    eventually(
        "readiness reports the auth check",
        Duration::from_secs(15),
        || {
            let request = app.client.get(&ready_url);
            async move {
                let r = send(request).await;
                assert_eq!(r.status, 503, "not ready without keys: {}", r.text);
                r.body["checks"]["auth"]["status"] == "fail"
            }
        },
    )
    .await;
    let ready = send(app.client.get(&ready_url)).await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(
        ready.body["checks"]["database"]["status"], "ok",
        "{}",
        ready.text
    );
    let error = ready.body["checks"]["auth"]["error"].as_str().unwrap_or("");
    assert!(
        !error.contains(&idp.jwks_url()),
        "the check names no URL: {error}"
    );
    // Keys that were never fetched are required (readiness is 503): /health fails too.
    let health = send(app.client.get(app.url("/health"))).await;
    assert_eq!(health.status, 503, "{}", health.text);
    assert_eq!(health.body["status"], "fail", "{}", health.text);
    assert_eq!(
        health.body["checks"]["auth"]["status"], "fail",
        "{}",
        health.text
    );

    // Without keys: no token is still 401, a malformed one too; a well-formed one cannot be
    // checked yet, which is the service's fault, not the client's.
    get_with(&app, "/v1/me", &[])
        .await
        .refused(Challenge::NoToken, &[], "no token, no keys");
    let r = get_with(&app, "/v1/me", &[bearer("garbage-garbage")]).await;
    r.refused(Challenge::Invalid, &[], "garbage, no keys");
    let claims = idp.claims("u-cold");
    let token = idp.token(&claims);
    let r = get_as(&app, "/v1/me", &token).await;
    r.problem(503, "auth-unavailable");
    r.quotes_none(&secrets_of(&token, &claims), "no keys yet");

    // Back up: the refresher retries every 30 s, so the app turns ready within about 35 s.
    idp.set_down(false);
    app.wait_ready(Duration::from_secs(50)).await;
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(45), "ready after {waited:?}");
    assert_eq!(me(&app, &token).await["user_id"], "u-cold");
    let health = send(app.client.get(app.url("/health"))).await;
    assert_eq!(health.body["status"], "ok", "{}", health.text);
    let counts = failures(&app).await;
    assert!(counts["unavailable"] >= 1, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_token_is_refused_once_it_expires() {
    let idp = FakeIdp::start().await;
    let app = idp_app(TestDb::sqlite(), &idp)
        .env("AUTH_LEEWAY_SECONDS", "0")
        .spawn()
        .await;
    let claims = with(idp.claims("u-brief"), json!({"exp": now() + 2}));
    let token = idp.token(&claims);
    assert_eq!(me(&app, &token).await["user_id"], "u-brief");
    let r = get_as(&app, "/v1/auth/check", &token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let before = failures(&app).await["expired"];

    tokio::time::sleep(Duration::from_secs(3)).await;
    for path in ["/v1/me", "/v1/auth/check"] {
        let r = get_as(&app, path, &token).await;
        r.refused(Challenge::Invalid, &secrets_of(&token, &claims), path);
    }
    assert_eq!(failures(&app).await["expired"], before + 2);
}
