//! The gateway across real processes: the `keel` binary in front of a real app on a port of its
//! own. Rules admit or refuse requests (a token by default, `auth = "none"`, an entitlement, a
//! body limit), the app hears the caller only from Keel (every inbound identity header removed,
//! the signature verifying on the app's side), bodies stream both ways in bounded memory,
//! WebSocket and server-sent events pass, an app that is down or slow is answered by Keel, and
//! the Python and Node checks docs/GATEWAY.md shows accept Keel's signature and refuse a forgery.

use crate::common;
use crate::gateway_support::{self, Upstream};

use std::time::{Duration, Instant};

use base64::Engine;
use keel_testkit::{eventually, KeelProcess};
use ring::hmac;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{bin, keel};

const LIMIT: Duration = Duration::from_secs(60);
const HS256_SECRET: &str = "gateway-test-hs256-secret-0123456789abcdef";
const ADMIN_TOKEN: &str = "gateway-test-admin-token-0123456789abcdef";
const SIGNING_SECRET: &str = "gateway-test-signing-secret-0123456789ab";
const METRICS_TOKEN: &str = "gateway-test-metrics-token-0123456789abc";

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
fn token(user: &str) -> String {
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
async fn keel_in_front(
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

fn assert_problem(response_status: u16, body: &Value, status: u16, slug: &str) {
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

/// A value of `/proc/PID/status` in kB.
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

const HUNDRED_MB: u64 = 100 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_upload_and_download_stream_through_in_bounded_memory() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let keel = keel_in_front(dir.path(), &upstream.url(), "", &[]).await;
    let pid = keel.child.id();
    let ada = token("ada");
    let client = fresh_connections();
    // Warm: a connection to the app exists and the token is cached.
    let warm = client
        .get(keel.url("/api/whoami"))
        .bearer_auth(&ada)
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), 200);
    let before = status_kb(pid, "VmRSS:");
    // The peak is measured from here (writing 5 to clear_refs resets it).
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset the peak RSS");

    // Upload: 100 MB written 64 KiB at a time; the app counts what arrives.
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", keel.port))
        .await
        .unwrap();
    let head = format!(
        "POST /api/upload HTTP/1.1\r\nhost: keel\r\nauthorization: Bearer {ada}\r\n\
         content-length: {HUNDRED_MB}\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'u'; 64 * 1024];
    for _ in 0..HUNDRED_MB / chunk.len() as u64 {
        stream.write_all(&chunk).await.unwrap();
    }
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(&HUNDRED_MB.to_string()), "{answer}");

    // Download: 100 MB read as it comes.
    let mut download = client
        .get(keel.url(&format!("/api/download?bytes={HUNDRED_MB}")))
        .bearer_auth(&ada)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    let mut received = 0u64;
    while let Some(chunk) = download.chunk().await.unwrap() {
        received += chunk.len() as u64;
    }
    assert_eq!(received, HUNDRED_MB);

    let peak = status_kb(pid, "VmHWM:");
    let growth_mb = peak.saturating_sub(before) as f64 / 1024.0;
    assert!(
        growth_mb < 20.0,
        "keel's resident memory grew {growth_mb:.1} MB (from {before} kB to a peak of {peak} kB)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_messages_and_server_sent_events_pass_through() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let keel = keel_in_front(dir.path(), &upstream.url(), "", &[]).await;
    let ada = token("ada");

    // WebSocket: the handshake through Keel, then messages both ways on the switched connection.
    let mut ws = tokio::net::TcpStream::connect(("127.0.0.1", keel.port))
        .await
        .unwrap();
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let handshake = format!(
        "GET /api/ws HTTP/1.1\r\nhost: keel\r\nauthorization: Bearer {ada}\r\n\
         connection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\n\
         sec-websocket-key: {key}\r\n\r\n"
    );
    ws.write_all(handshake.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        ws.read_exact(&mut byte)
            .await
            .expect("the handshake answer");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    let accept = gateway_support::accept(key.as_bytes()).to_ascii_lowercase();
    assert!(
        head.contains(&format!("sec-websocket-accept: {accept}")),
        "{head}"
    );
    for message in ["hello", "through keel"] {
        let frame = gateway_support::frame(message.as_bytes(), Some([1, 2, 3, 4]));
        ws.write_all(&frame).await.unwrap();
        let echoed = tokio::time::timeout(LIMIT, gateway_support::read_frame(&mut ws))
            .await
            .expect("the echo in time")
            .unwrap();
        assert_eq!(echoed, message.as_bytes());
    }

    // Without a token the handshake is refused like any request.
    let refused = reqwest::Client::new()
        .get(keel.url("/api/ws"))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    // Server-sent events: the first event arrives while the stream is still open.
    let mut events = reqwest::Client::new()
        .get(keel.url("/api/events"))
        .bearer_auth(&ada)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let first = tokio::time::timeout(LIMIT, events.chunk())
        .await
        .expect("the first event before the stream ends")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"data: one\n\n");
    let sender = upstream
        .events
        .lock()
        .await
        .take()
        .expect("the app's event stream");
    sender
        .send(axum::body::Bytes::from_static(b"data: two\n\n"))
        .await
        .unwrap();
    let second = tokio::time::timeout(LIMIT, events.chunk())
        .await
        .expect("the second event")
        .unwrap()
        .unwrap();
    assert_eq!(&second[..], b"data: two\n\n");
    drop(sender);
    let end = tokio::time::timeout(LIMIT, events.chunk())
        .await
        .expect("the end");
    assert!(end.unwrap().is_none());
}

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

/// The app of docs/GATEWAY.md's Python check: a server that answers `verified` to a request
/// whose `x-keel-signature` the documented function accepts, 401 `refused` otherwise. It prints
/// its port.
const PYTHON_APP: &str = r#"
from http.server import BaseHTTPRequestHandler, HTTPServer
import keel_sig

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        path, _, query = self.path.partition("?")
        scope = {"method": self.command, "raw_path": path.encode("latin-1"),
                 "query_string": query.encode("latin-1")}
        headers = {k.lower(): v for k, v in self.headers.items()}
        ok = keel_sig.from_keel(scope, headers)
        body = b"verified" if ok else b"refused"
        self.send_response(200 if ok else 401)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// The same for the Node check (an Express-like `req`: `method`, `originalUrl`, `get`).
const NODE_APP: &str = r#"
import http from "node:http";
import { fromKeel } from "./keel_sig.mjs";
const server = http.createServer((req, res) => {
  const ok = fromKeel({ method: req.method, originalUrl: req.url, get: (n) => req.headers[n.toLowerCase()] });
  res.writeHead(ok ? 200 : 401);
  res.end(ok ? "verified" : "refused");
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
"#;

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The code block of docs/GATEWAY.md after `heading`, up to `until` when given.
fn documented(heading: &str, fence: &str, until: Option<&str>) -> String {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/GATEWAY.md"),
    )
    .expect("docs/GATEWAY.md");
    let code = doc
        .split_once(&format!("{heading}\n\n```{fence}\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(code, _)| code)
        .unwrap_or_else(|| panic!("no {fence} block after {heading:?} in docs/GATEWAY.md"));
    match until {
        Some(end) => code.split(end).next().unwrap_or(code).to_string(),
        None => code.to_string(),
    }
}

/// Runs `program file` in `dir` (the check's secret in its environment) and returns it with the
/// URL it prints the port of.
fn start_app(dir: &std::path::Path, program: &str, file: &str) -> (Child, String) {
    use std::io::BufRead;
    let mut app = std::process::Command::new(program)
        .arg(file)
        .current_dir(dir)
        .env("UPSTREAM_SIGNING_SECRET", SIGNING_SECRET)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} runs the documented check: {e}"));
    let stdout = app.stdout.take().expect("the app's output");
    let app = Child(app);
    let mut port = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut port)
        .expect("the app's port");
    (app, format!("http://127.0.0.1:{}", port.trim()))
}

/// Keel in front of the app at `app_url`: a request through Keel verifies; one sent to the app
/// directly with a forged identity and signature is refused.
async fn documented_check_holds(dir: &std::path::Path, app_url: &str) {
    let keel = keel_in_front(dir, app_url, "", &[]).await;
    let client = fresh_connections();
    let through_keel = client
        .get(keel.url("/api/a%20b/items?page=2&q=x%2Cy"))
        .bearer_auth(token("ada"))
        .header("x-user-id", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(through_keel.status(), 200);
    assert_eq!(through_keel.text().await.unwrap(), "verified");
    let forged = client
        .get(format!("{app_url}/api/items"))
        .header("x-user-id", "mallory")
        .header(
            "x-keel-signature",
            format!("t={},v1={}", chrono::Utc::now().timestamp(), "0".repeat(64)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(forged.text().await.unwrap(), "refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_python_check_accepts_keels_signature_and_refuses_a_forgery() {
    let dir = tempfile::tempdir().unwrap();
    let check = documented("Python (FastAPI or any ASGI app):", "python", None);
    std::fs::write(dir.path().join("keel_sig.py"), check).unwrap();
    std::fs::write(dir.path().join("app.py"), PYTHON_APP).unwrap();
    let (_app, url) = start_app(dir.path(), "python3", "app.py");
    documented_check_holds(dir.path(), &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_node_check_accepts_keels_signature_and_refuses_a_forgery() {
    let dir = tempfile::tempdir().unwrap();
    let check = documented("Node (Express):", "js", Some("app.use("));
    std::fs::write(dir.path().join("keel_sig.mjs"), check).unwrap();
    std::fs::write(dir.path().join("app.mjs"), NODE_APP).unwrap();
    let (_app, url) = start_app(dir.path(), "node", "app.mjs");
    documented_check_holds(dir.path(), &url).await;
}

/// A client that opens a connection per request. Keel closes a connection after some answers
/// (a 413 before the body is read) and closes idle ones, and a pooled connection closed by the
/// server just as a request goes out fails that request; these tests are about answers, not reuse.
fn fresh_connections() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("a reqwest client")
}
