//! The gateway across real processes: the `keel` binary in front of a real app on a port of its
//! own. Rules admit or refuse requests (a token by default, `auth = "none"`, an entitlement, a
//! body limit), the app hears the caller only from Keel (every inbound identity header removed,
//! the signature verifying on the app's side), and a tenant, an optional token, a rate limit and a
//! stalled client follow their rules. An app that is down or slow, and bad rules, are in
//! `gateway_failures`. Streaming bodies, WebSocket and SSE are in `gateway_streams`; the signature checks
//! docs/GATEWAY.md shows are run in `gateway_docs`.

use crate::common;
use crate::gateway_support::Upstream;

use std::time::{Duration, Instant};

use base64::Engine;
use keel_testkit::{eventually, KeelProcess};
use ring::hmac;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::bin;

pub(crate) const LIMIT: Duration = Duration::from_secs(60);
const HS256_SECRET: &str = "gateway-test-hs256-secret-0123456789abcdef";
const ADMIN_TOKEN: &str = "gateway-test-admin-token-0123456789abcdef";
pub(crate) const SIGNING_SECRET: &str = "gateway-test-signing-secret-0123456789ab";
pub(crate) const METRICS_TOKEN: &str = "gateway-test-metrics-token-0123456789abc";

const RULES: &str = r#"
[[routes]]
path = "/public/**"
auth = "none"

[[routes]]
path = "/premium/**"
entitlement = "premium"

[[routes]]
path = "/small/**"
methods = ["POST"]
body_limit = "1KB"
"#;

/// An HS256 token for `user`, valid for an hour.
pub(crate) fn token(user: &str) -> String {
    token_in(user, None)
}

/// An HS256 token for `user` naming `tenant` (the `org_id` claim) when given.
fn token_in(user: &str, tenant: Option<&str>) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let exp = chrono::Utc::now().timestamp() + 3600;
    let head = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let mut claims = json!({ "sub": user, "exp": exp });
    if let Some(tenant) = tenant {
        claims["org_id"] = tenant.into();
    }
    let claims = b64.encode(claims.to_string());
    let signing_input = format!("{head}.{claims}");
    let key = hmac::Key::new(hmac::HMAC_SHA256, HS256_SECRET.as_bytes());
    let signature = b64.encode(hmac::sign(&key, signing_input.as_bytes()).as_ref());
    format!("{signing_input}.{signature}")
}

/// Keel in front of `upstream`, with `rules` as its `keel.toml`, ready.
pub(crate) async fn keel_in_front(
    dir: &std::path::Path,
    upstream: &str,
    rules: &str,
    extra: &[(&str, &str)],
) -> KeelProcess {
    std::fs::write(dir.join("keel.toml"), rules).expect("keel.toml");
    let mut env = vec![
        ("UPSTREAM_URL", upstream),
        ("AUTH_HS256_SECRET", HS256_SECRET),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
        ("METRICS_TOKEN", METRICS_TOKEN),
        ("UPSTREAM_SIGNING_SECRET", SIGNING_SECRET),
        ("LOG_LEVEL", "warn"),
    ];
    env.extend_from_slice(extra);
    let mut keel = KeelProcess::serve(&bin(), dir, &env, &[]);
    keel.wait_ready(LIMIT).await;
    keel
}

pub(crate) fn assert_problem(response_status: u16, body: &Value, status: u16, slug: &str) {
    assert_eq!(response_status, status, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(
        body["type"],
        format!("https://keel.dev/problems/{slug}"),
        "{body}"
    );
}

/// What the app heard, and the answer's request id.
async fn whoami(
    client: &reqwest::Client,
    keel: &KeelProcess,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Value, String) {
    let mut request = client.get(keel.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request through the gateway");
    let status = response.status().as_u16();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, id)
}

/// The app's check of `x-keel-signature`, as docs/GATEWAY.md describes it.
fn verify_signature(heard: &Value, method: &str, path: &str) {
    let field = |name: &str| heard[name].as_str().unwrap_or("").to_string();
    let signature = field("x-keel-signature");
    let (t, v1) = signature
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("x-keel-signature is t=…,v1=…: {heard}"));
    let age = chrono::Utc::now().timestamp() - t.parse::<i64>().expect("t is a number");
    assert!((0..=60).contains(&age), "signed {age} s ago");
    let text = [
        t.to_string(),
        method.to_string(),
        path.to_string(),
        field("x-user-id"),
        field("x-tenant-id"),
        field("x-entitlements"),
        field("x-request-id"),
    ]
    .join("\n");
    let key = hmac::Key::new(hmac::HMAC_SHA256, SIGNING_SECRET.as_bytes());
    let tag: Vec<u8> = (0..v1.len() / 2)
        .map(|i| u8::from_str_radix(&v1[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    hmac::verify(&key, text.as_bytes(), &tag)
        .unwrap_or_else(|_| panic!("the signature does not verify over {text:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_admit_requests_and_the_app_hears_the_caller_only_from_keel() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let keel = keel_in_front(dir.path(), &upstream.url(), RULES, &[]).await;
    let client = fresh_connections();
    let ada = format!("Bearer {}", token("ada"));

    // A route no rule names needs a token.
    let (status, body, _) = whoami(&client, &keel, "/api/whoami", &[]).await;
    assert_problem(status, &body, 401, "unauthorized");
    let bad = format!("Bearer {}x", token("ada"));
    let (status, body, _) = whoami(&client, &keel, "/api/whoami", &[("authorization", &bad)]).await;
    assert_problem(status, &body, 401, "invalid-token");

    // With one, the app hears Keel's identity and nothing the client claimed.
    let spoofed = [
        ("authorization", ada.as_str()),
        ("x-user-id", "admin"),
        ("x-tenant-id", "acme"),
        ("x-entitlements", "premium"),
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-proto", "https"),
        ("x-keel-signature", "t=1,v1=00"),
        ("forwarded", "for=203.0.113.9"),
    ];
    let (status, heard, id) = whoami(&client, &keel, "/api/whoami?page=2", &spoofed).await;
    assert_eq!(status, 200, "{heard}");
    assert_eq!(heard["x-user-id"], "ada", "{heard}");
    assert!(heard.get("x-tenant-id").is_none(), "{heard}");
    assert_eq!(heard["x-entitlements"], "", "{heard}");
    assert_eq!(heard["x-forwarded-for"], "127.0.0.1", "{heard}");
    assert_eq!(heard["x-forwarded-proto"], "http", "{heard}");
    assert_eq!(
        heard["x-forwarded-host"],
        format!("127.0.0.1:{}", keel.port)
    );
    assert_eq!(heard["x-request-id"], id.as_str(), "{heard}");
    assert!(heard.get("forwarded").is_none(), "{heard}");
    assert_eq!(heard[":target"], "/api/whoami?page=2", "{heard}");
    verify_signature(&heard, "GET", "/api/whoami?page=2");

    // `auth = "none"`: anonymous callers pass, and no identity reaches the app.
    let (status, heard, _) = whoami(
        &client,
        &keel,
        "/public/whoami",
        &[("x-user-id", "admin"), ("x-entitlements", "premium")],
    )
    .await;
    assert_eq!(status, 200, "{heard}");
    assert!(heard.get("x-user-id").is_none(), "{heard}");
    assert!(heard.get("x-entitlements").is_none(), "{heard}");
    verify_signature(&heard, "GET", "/public/whoami");

    // An entitlement rule: 403 naming it until it is granted.
    let auth = [("authorization", ada.as_str())];
    let (status, body, _) = whoami(&client, &keel, "/premium/whoami", &auth).await;
    assert_problem(status, &body, 403, "entitlement-required");
    assert!(
        body["detail"].as_str().unwrap().contains("premium"),
        "{body}"
    );
    let granted = client
        .post(keel.url("/admin/api/users/ada/grants"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "entitlement": "premium", "reason": "gateway test" }))
        .send()
        .await
        .unwrap();
    assert!(
        granted.status().is_success(),
        "{}",
        granted.text().await.unwrap()
    );
    let heard = eventually("the grant opens the paywall", LIMIT, || async {
        let (status, heard, _) = whoami(&client, &keel, "/premium/whoami", &auth).await;
        (status == 200).then_some(heard)
    })
    .await;
    assert_eq!(heard["x-entitlements"], "premium", "{heard}");
    verify_signature(&heard, "GET", "/premium/whoami");

    // The app's own error answers pass as the app wrote them.
    let missing = client
        .get(keel.url("/api/missing"))
        .header("authorization", &ada)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.text().await.unwrap(), "the app's own 404");

    // Keel's own routes win.
    let me = client
        .get(keel.url("/v1/me"))
        .header("authorization", &ada)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<Value>().await.unwrap()["user_id"], "ada");
    // They keep their own body limit (BODY_LIMIT_BYTES, 1 MiB by default).
    let oversized = client
        .post(keel.url("/admin/api/jobs"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(format!(
            "{{\"kind\":\"diag.noop\",\"args\":\"{}\"}}",
            "x".repeat(2 << 20)
        ))
        .send()
        .await
        .unwrap();
    let status = oversized.status().as_u16();
    assert_problem(
        status,
        &oversized.json().await.unwrap(),
        413,
        "payload-too-large",
    );

    // A path the app might read differently from the rules is refused.
    let ambiguous = client
        .get(keel.url("/public/..%2Fapi/whoami"))
        .send()
        .await
        .unwrap();
    let status = ambiguous.status().as_u16();
    assert_problem(
        status,
        &ambiguous.json().await.unwrap(),
        400,
        "malformed-request",
    );

    // A body over the rule's limit: 413 before the app sees it, declared or streamed.
    let big = client
        .post(keel.url("/small/upload"))
        .header("authorization", &ada)
        .body(vec![b'x'; 2000])
        .send()
        .await
        .unwrap();
    let status = big.status().as_u16();
    assert_problem(status, &big.json().await.unwrap(), 413, "payload-too-large");
    let fits = client
        .post(keel.url("/small/upload"))
        .header("authorization", &ada)
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(fits.text().await.unwrap(), "1000");
    let mut streamed = tokio::net::TcpStream::connect(("127.0.0.1", keel.port))
        .await
        .unwrap();
    let head = format!(
        "POST /small/upload HTTP/1.1\r\nhost: keel\r\nauthorization: {ada}\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    streamed.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..4 {
        streamed.write_all(b"1f4\r\n").await.unwrap();
        streamed.write_all(&[b'x'; 500]).await.unwrap();
        streamed.write_all(b"\r\n").await.unwrap();
    }
    streamed.write_all(b"0\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(LIMIT, streamed.read_to_string(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Per-rule metrics.
    let metrics = client
        .get(keel.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "keel_gateway_requests_total{rule=\"/premium/**\",class=\"4xx\"} ",
        "keel_gateway_requests_total{rule=\"/public/**\",class=\"2xx\"} 1",
        "keel_gateway_requests_total{rule=\"default\",class=\"4xx\"} 3",
        "keel_gateway_request_duration_seconds_count{rule=\"POST /small/**\"} 3",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
}

const MORE_RULES: &str = r#"
[[rate_limits]]
name = "tight"
limit = 2
period = "1h"

[[routes]]
path = "/api/orgs/**"
tenant = "required"

[[routes]]
path = "/api/search"
auth = "optional"

[[routes]]
path = "/api/pay"
methods = ["POST"]
rate_limit = "tight"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_optional_tokens_rate_limits_and_stalled_clients_follow_the_rules() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The app's URL has a base path: every request goes under it.
    let keel = keel_in_front(
        dir.path(),
        &format!("{}/base/", upstream.url()),
        MORE_RULES,
        &[("UPSTREAM_TIMEOUT_SECONDS", "2")],
    )
    .await;
    let client = fresh_connections();
    let ada = format!("Bearer {}", token("ada"));
    let ada_at_acme = format!("Bearer {}", token_in("ada", Some("acme")));

    // `tenant = "required"`: a token naming no tenant is refused; one naming it passes it on.
    let path = "/api/orgs/acme/report";
    let (status, body, _) = whoami(&client, &keel, path, &[("authorization", &ada)]).await;
    assert_problem(status, &body, 403, "tenant-required");
    let (status, heard, _) = whoami(
        &client,
        &keel,
        path,
        &[("authorization", &ada_at_acme), ("x-tenant-id", "other")],
    )
    .await;
    assert_eq!(status, 200, "{heard}");
    assert_eq!(heard["x-tenant-id"], "acme", "{heard}");
    assert_eq!(heard[":target"], "/base/api/orgs/acme/report", "{heard}");
    verify_signature(&heard, "GET", "/base/api/orgs/acme/report");

    // `auth = "optional"`: anonymous passes without identity, a valid token passes with it, an
    // invalid one is refused.
    let (status, heard, _) = whoami(&client, &keel, "/api/search", &[("x-user-id", "eve")]).await;
    assert_eq!(status, 200, "{heard}");
    assert!(heard.get("x-user-id").is_none(), "{heard}");
    let (status, heard, _) =
        whoami(&client, &keel, "/api/search", &[("authorization", &ada)]).await;
    assert_eq!(status, 200, "{heard}");
    assert_eq!(heard["x-user-id"], "ada", "{heard}");
    let bad = format!("{ada}x");
    let (status, body, _) = whoami(&client, &keel, "/api/search", &[("authorization", &bad)]).await;
    assert_problem(status, &body, 401, "invalid-token");

    // A rule's rate-limit policy: the third request of the hour is refused.
    for remaining in [1, 0] {
        let paid = client
            .post(keel.url("/api/pay"))
            .header("authorization", &ada)
            .send()
            .await
            .unwrap();
        assert_eq!(paid.status(), 200);
        let field = paid.headers()["ratelimit"].to_str().unwrap().to_string();
        assert!(
            field.starts_with(&format!("\"tight\";r={remaining};")),
            "{field}"
        );
    }
    let refused = client
        .post(keel.url("/api/pay"))
        .header("authorization", &ada)
        .send()
        .await
        .unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    let status = refused.status().as_u16();
    assert_problem(status, &refused.json().await.unwrap(), 429, "rate-limited");
    // Another user has a quota of their own.
    let other = client
        .post(keel.url("/api/pay"))
        .bearer_auth(token("bob"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);

    // A client that stops sending its body: 408 once it has paused for the timeout.
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", keel.port))
        .await
        .unwrap();
    let head = format!(
        "POST /api/upload HTTP/1.1\r\nhost: keel\r\n{}: {ada}\r\ncontent-length: 1000\r\n\r\n0123456789",
        "authorization"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(LIMIT, stream.read(&mut answer))
        .await
        .expect("an answer, not a hang")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("client-timeout"), "{answer}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// A client that opens a connection per request. Keel closes a connection after some answers
/// (a 413 before the body is read) and closes idle ones, and a pooled connection closed by the
/// server just as a request goes out fails that request; these tests are about answers, not reuse.
pub(crate) fn fresh_connections() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("a reqwest client")
}
