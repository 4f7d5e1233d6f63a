//! Input the edge refuses, the same way on both engines: NUL characters in paths, query strings
//! and JSON bodies (which Postgres cannot store) are 400 `nul-character` problems, and length
//! rules count characters, as their messages say. Billing webhooks keep a NUL character that only
//! sits in the payload (the raw payload is stored sealed) and refuse one in an id they project.

use crate::billing_support;

use billing_support::*;
use keel_testkit::{admin, TestApp, TestDb};
use reqwest::Method;
use serde_json::{json, Value};

async fn spawn(db: TestDb) -> (TestApp, tempfile::TempDir) {
    let (dir, config) = config_dir();
    (app(db, &config).spawn().await, dir)
}

async fn refused_as_nul(app: &TestApp, method: Method, path: &str, body: Option<&Value>) {
    let r = admin(app, method.clone(), path, body).await;
    let problem = r.problem(400, "nul-character");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("NUL"),
        "{method} {path}: {}",
        r.text
    );
}

keel_testkit::engine_test!(nul_characters_are_refused_at_the_edge);
async fn nul_characters_are_refused_at_the_edge(db: TestDb) {
    let (app, _dir) = spawn(db).await;
    for path in [
        "/admin/api/users/ab%00cd",
        "/admin/api/users/ab%00cd/entitlements",
        "/admin/api/jobs?kind=a%00b",
        "/admin/api/audit?target=a%00b",
    ] {
        refused_as_nul(&app, Method::GET, path, None).await;
    }
    let grant = json!({ "entitlement": "beta", "reason": "a\u{0}b" });
    refused_as_nul(
        &app,
        Method::POST,
        "/admin/api/users/u1/grants",
        Some(&grant),
    )
    .await;
    let grant = json!({ "entitlement": "beta", "reason": "tester" });
    refused_as_nul(
        &app,
        Method::POST,
        "/admin/api/users/u%001/grants",
        Some(&grant),
    )
    .await;
    for spec in [
        json!({ "kind": "diag.noop", "unique_key": "a\u{0}b" }),
        json!({ "kind": "diag.noop", "breaker_key": "a\u{0}b" }),
        json!({ "kind": "diag.noop", "args": { "text": "a\u{0}b" } }),
        json!({ "kind": "diag.noop", "args": { "a\u{0}b": 1 } }),
    ] {
        refused_as_nul(&app, Method::POST, "/admin/api/jobs", Some(&spec)).await;
    }
    // A backslash before "u0000" is text, not a NUL character.
    let spec = json!({ "kind": "diag.noop", "unique_key": "a\\u0000b" });
    admin(&app, Method::POST, "/admin/api/jobs", Some(&spec))
        .await
        .ok(201);
    // Nothing refused reached the store; the one accepted job did.
    let jobs = admin(&app, Method::GET, "/admin/api/jobs?kind=diag.noop", None).await;
    assert_eq!(
        jobs.ok(200).as_array().map(Vec::len),
        Some(1),
        "{}",
        jobs.text
    );
    let grants = admin(&app, Method::GET, "/admin/api/users/u1/entitlements", None).await;
    assert!(!grants.text.contains("beta"), "{}", grants.text);
}

keel_testkit::engine_test!(webhooks_store_a_payload_with_nul_and_refuse_nul_in_ids);
async fn webhooks_store_a_payload_with_nul_and_refuse_nul_in_ids(db: TestDb) {
    let (app, _dir) = spawn(db).await;
    let user = "nul-payload-user";
    let event = fixture("revenuecat", "initial_purchase");
    let event = set(event, "/event/app_user_id", json!(user));
    let event = set(event, "/event/original_app_user_id", json!(user));
    let event = set(event, "/event/expiration_at_ms", json!(ms_in_days(7)));
    let mut event = set(event, "/event/event_timestamp_ms", json!(ms_in_days(0)));
    event["event"]["store_note"] = json!("before\u{0}after");
    let answer = revenuecat(&app, &event).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(active(&app, user, "pro").await);
    let export = app
        .client
        .get(app.url("/v1/me/export"))
        .bearer_auth(token(user))
        .send()
        .await
        .expect("export");
    assert_eq!(export.status(), 200);
    let export: Value = export.json().await.expect("JSON");
    assert_eq!(
        export["billing_events"][0]["payload"]["event"]["store_note"], "before\u{0}after",
        "{export}"
    );

    let event = set(event, "/event/id", json!("another-event"));
    let event = set(event, "/event/app_user_id", json!("a\u{0}b"));
    let answer = revenuecat(&app, &event).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(
        answer.body["type"], "https://keel.dev/problems/malformed-request",
        "{}",
        answer.body
    );
}

keel_testkit::engine_test!(length_rules_count_characters);
async fn length_rules_count_characters(db: TestDb) {
    let (app, _dir) = spawn(db).await;
    let emoji = "😀".repeat(64);
    let grant = json!({ "entitlement": "beta", "reason": "é".repeat(500) });
    let path = format!("/admin/api/users/{emoji}/grants");
    admin(&app, Method::POST, &path, Some(&grant)).await.ok(200);
    let r = admin(
        &app,
        Method::GET,
        &format!("/admin/api/users/{emoji}/entitlements"),
        None,
    )
    .await;
    assert_eq!(
        r.ok(200)["entitlements"]["beta"]["active"],
        true,
        "{}",
        r.text
    );
    let r = app
        .client
        .get(app.url("/v1/me"))
        .bearer_auth(token(&emoji))
        .send()
        .await
        .expect("me");
    assert_eq!(r.status(), 200);

    let long = "😀".repeat(256);
    let path = format!("/admin/api/users/{long}/grants");
    admin(&app, Method::POST, &path, Some(&grant))
        .await
        .problem(422, "validation-failed");
    let grant = json!({ "entitlement": "beta", "reason": "é".repeat(501) });
    admin(
        &app,
        Method::POST,
        "/admin/api/users/u1/grants",
        Some(&grant),
    )
    .await
    .problem(422, "validation-failed");
    let spec = json!({ "kind": "diag.noop", "unique_key": "é".repeat(500) });
    admin(&app, Method::POST, "/admin/api/jobs", Some(&spec))
        .await
        .ok(201);
    let spec = json!({ "kind": "diag.noop", "unique_key": "é".repeat(501) });
    admin(&app, Method::POST, "/admin/api/jobs", Some(&spec))
        .await
        .problem(422, "validation-failed");
}

/// Sends `request` on a new connection and reads the answer to the end (each of these answers
/// closes the connection): the status, the head in lower case, and the body as JSON.
async fn raw(app: &TestApp, request: &[u8]) -> (u16, String, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    let text = String::from_utf8(answer).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let status = head[9..12].parse().expect("a status");
    let body = serde_json::from_str(body).unwrap_or(Value::Null);
    (status, head.to_ascii_lowercase(), body)
}

fn assert_problem(answer: &(u16, String, Value), status: u16, slug: &str) {
    let (got, head, body) = answer;
    assert_eq!(*got, status, "{head}\n{body}");
    assert!(
        head.contains("\r\ncontent-type: application/problem+json"),
        "{head}"
    );
    assert_eq!(
        body["type"],
        format!("https://keel.dev/problems/{slug}"),
        "{body}"
    );
    assert_eq!(body["status"], status, "{body}");
}

fn get_with_headers(count: usize) -> Vec<u8> {
    let mut request =
        String::from("GET /health/live HTTP/1.1\r\nhost: keel\r\nconnection: close\r\n");
    for i in 0..count {
        request.push_str(&format!("x-filler-{i}: {i}\r\n"));
    }
    request.push_str("\r\n");
    request.into_bytes()
}

keel_testkit::engine_test!(malformed_and_oversized_heads_are_answered_with_problems);
async fn malformed_and_oversized_heads_are_answered_with_problems(db: TestDb) {
    let (app, _dir) = spawn(db).await;
    let fine = raw(&app, &get_with_headers(90)).await;
    assert_eq!(fine.0, 200, "{}", fine.1);
    // Over Keel's limit of 100 fields, and over what hyper parses at all.
    for count in [150, 1500] {
        let answer = raw(&app, &get_with_headers(count)).await;
        assert_problem(&answer, 431, "headers-too-large");
    }
    let nul_id = b"GET /health/live HTTP/1.1\r\nhost: keel\r\nx-request-id: ab\0cd\r\n\r\n";
    assert_problem(&raw(&app, nul_id).await, 400, "malformed-request");
    let bad_name = b"GET /health/live HTTP/1.1\r\nhost: keel\r\nbad header: x\r\n\r\n";
    assert_problem(&raw(&app, bad_name).await, 400, "malformed-request");
}
