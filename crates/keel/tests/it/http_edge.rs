//! The HTTP edge seen from outside: problem bodies for every error, limits, request ids, security
//! headers, CORS, timeouts and graceful shutdown (SPEC §2 and §4).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::{get, post};
use axum::Router;
use keel::http::extract::Json;
use keel::http::AppState;
use keel_testkit::{TestApp, TestDb};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

const PANIC_MESSAGE: &str = "secret-panic-message hunter2";
const FIVE_MIB: usize = 5 * 1024 * 1024;

#[derive(Debug, serde::Deserialize)]
struct Item {
    name: String,
    count: u32,
}

async fn create_item(Json(item): Json<Item>) -> axum::Json<Value> {
    axum::Json(json!({ "name": item.name, "count": item.count }))
}

async fn boom() -> &'static str {
    panic!("{PANIC_MESSAGE}")
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(3)).await;
    "late"
}

fn routes() -> Router<AppState> {
    Router::new()
        .route("/items", post(create_item))
        .route("/boom", get(boom))
        .route("/slow", get(slow))
}

async fn spawn(env: &[(&str, &str)]) -> TestApp {
    let mut builder = TestApp::builder(TestDb::sqlite()).routes(routes());
    for (name, value) in env {
        builder = builder.env(name, value);
    }
    builder.spawn().await
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().expect("ascii header"))
}

/// The security headers every response carries (HSTS is checked separately, per environment).
fn assert_security_headers(headers: &HeaderMap) {
    assert_eq!(header(headers, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(headers, "x-frame-options"), Some("DENY"));
    assert_eq!(header(headers, "referrer-policy"), Some("no-referrer"));
    let csp = header(headers, "content-security-policy").expect("content-security-policy");
    assert!(!csp.is_empty());
    let id = header(headers, "x-request-id").expect("x-request-id");
    assert!(
        keel::http::middleware::request_id::is_acceptable(id),
        "{id}"
    );
}

/// A problem+json answer with `status`; returns the parsed body.
fn check_problem(status: u16, headers: &HeaderMap, body: &[u8], want: u16) -> Value {
    let text = String::from_utf8_lossy(body);
    assert_eq!(status, want, "body: {text}");
    let content_type = header(headers, "content-type").expect("content-type");
    assert!(
        content_type.starts_with("application/problem+json"),
        "content-type {content_type}, body {text}"
    );
    assert_security_headers(headers);
    let problem: Value = serde_json::from_slice(body).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(
        problem["type"].as_str().is_some_and(|t| !t.is_empty()),
        "{problem}"
    );
    assert!(
        problem["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{problem}"
    );
    assert_eq!(problem["status"], want, "{problem}");
    assert!(
        problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{problem}"
    );
    assert_eq!(
        problem["request_id"].as_str(),
        header(headers, "x-request-id"),
        "request_id of the body is the x-request-id header"
    );
    problem
}

async fn problem(response: reqwest::Response, want: u16) -> (HeaderMap, Value) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body");
    let problem = check_problem(status, &headers, &body, want);
    (headers, problem)
}

async fn post_raw(
    app: &TestApp,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.client
        .post(app.url("/items"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_json_is_accepted() {
    let app = spawn(&[]).await;
    let response = app
        .post_json("/items", &json!({"name": "a", "count": 3}))
        .await;
    assert_eq!(response.status(), 200);
    assert_security_headers(response.headers());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"name": "a", "count": 3}));
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_400_with_position() {
    let app = spawn(&[]).await;
    let response = post_raw(&app, "application/json", "{\"name\": \"a\",\n \"count\": }").await;
    let (_, body) = problem(response, 400).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("line 2 column"), "{detail}");
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_field_type_is_422_naming_the_field() {
    let app = spawn(&[]).await;
    let response = app
        .post_json("/items", &json!({"name": "a", "count": "three"}))
        .await;
    let (_, body) = problem(response, 422).await;
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["field"], "count");
    assert!(errors[0]["message"].as_str().is_some_and(|m| !m.is_empty()));
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_field_is_422() {
    let app = spawn(&[]).await;
    let response = app.post_json("/items", &json!({"name": "a"})).await;
    let (_, body) = problem(response, 422).await;
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{body}");
    let field = errors[0]["field"].as_str().expect("field");
    let message = errors[0]["message"].as_str().expect("message");
    assert!(field == "count" || message.contains("count"), "{body}");
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_content_type_is_415() {
    let app = spawn(&[]).await;
    let response = post_raw(&app, "text/plain", r#"{"name": "a", "count": 1}"#).await;
    problem(response, 415).await;
    let response = app
        .client
        .post(app.url("/items"))
        .body(r#"{"name": "a", "count": 1}"#)
        .send()
        .await
        .unwrap();
    problem(response, 415).await;
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_as_json_are_400() {
    let app = spawn(&[]).await;
    // A fixed pseudo-random sequence; the first byte makes it invalid JSON whatever follows.
    let mut state: u32 = 0x9e37_79b9;
    let mut bytes = vec![0xffu8];
    bytes.extend((0..4096).map(|_| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as u8
    }));
    let response = post_raw(&app, "application/json", bytes).await;
    problem(response, 400).await;
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_with_declared_length_over_the_limit_is_413() {
    let app = spawn(&[]).await;
    let mut body = b"{\"name\": \"".to_vec();
    body.resize(FIVE_MIB, b'a');
    let head = format!(
        "POST /items HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let (status, headers, bytes) = raw_exchange(&app, head, vec![body]).await;
    let problem = check_problem(status, &headers, &bytes, 413);
    assert!(
        problem["detail"].as_str().unwrap().contains("1048576"),
        "{problem}"
    );
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_over_the_limit_is_413() {
    let app = spawn(&[]).await;
    let head = "POST /items HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
                transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        .to_string();
    let chunk_size = 64 * 1024;
    let mut chunks = Vec::new();
    for i in 0..FIVE_MIB / chunk_size {
        let mut chunk = format!("{chunk_size:x}\r\n").into_bytes();
        let start = chunk.len();
        chunk.resize(start + chunk_size, b'a');
        if i == 0 {
            chunk[start..start + 10].copy_from_slice(b"{\"name\": \"");
        }
        chunk.extend_from_slice(b"\r\n");
        chunks.push(chunk);
    }
    chunks.push(b"0\r\n\r\n".to_vec());
    let (status, headers, bytes) = raw_exchange(&app, head, chunks).await;
    check_problem(status, &headers, &bytes, 413);
    app.shutdown().await.unwrap();
}

/// Sends `head` then `body` over a raw connection while reading the answer concurrently (the
/// server may answer, and close, before the body is all sent). Returns status, headers and body.
async fn raw_exchange(
    app: &TestApp,
    head: String,
    body: Vec<Vec<u8>>,
) -> (u16, HeaderMap, Vec<u8>) {
    let addr = app.base_url.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let sender = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        for chunk in body {
            writer.write_all(&chunk).await?;
        }
        writer.flush().await
    });
    let mut received = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let read = async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
                // A reset after the answer arrived is the server refusing the rest of the body.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("read: {e}"),
            }
            if let Some(parsed) = parse_response(&received) {
                return parsed;
            }
        }
        parse_response(&received)
            .unwrap_or_else(|| panic!("incomplete answer: {}", String::from_utf8_lossy(&received)))
    };
    let parsed = tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("an answer in time");
    sender.abort();
    parsed
}

/// A complete HTTP/1.1 response in `raw` (content-length or chunked body), if there is one.
fn parse_response(raw: &[u8]) -> Option<(u16, HeaderMap, Vec<u8>)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).expect("ascii head");
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).ok()?,
            HeaderValue::from_str(value.trim()).ok()?,
        );
    }
    let rest = &raw[end + 4..];
    if let Some(length) = header(&headers, "content-length") {
        let length: usize = length.parse().ok()?;
        return (rest.len() >= length).then(|| (status, headers.clone(), rest[..length].to_vec()));
    }
    if header(&headers, "transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        let (mut body, mut at) = (Vec::new(), 0);
        loop {
            let line_end = at + rest[at..].windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[at..line_end]).ok()?, 16).ok()?;
            let data = line_end + 2;
            if size == 0 {
                return Some((status, headers, body));
            }
            body.extend_from_slice(rest.get(data..data + size)?);
            at = data + size + 2;
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_route_is_404() {
    let app = spawn(&[]).await;
    problem(app.get("/no/such/route").await, 404).await;
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_is_405_with_allow() {
    let app = spawn(&[]).await;
    let (headers, _) = problem(app.get("/items").await, 405).await;
    let allow = header(&headers, "allow").expect("allow header");
    assert!(allow.contains("POST"), "{allow}");
    let response = app.client.delete(app.url("/health")).send().await.unwrap();
    let (headers, _) = problem(response, 405).await;
    assert!(header(&headers, "allow")
        .expect("allow header")
        .contains("GET"));
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_a_generic_500() {
    let app = spawn(&[]).await;
    let response = app.get("/boom").await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let text = String::from_utf8_lossy(&bytes).to_string();
    assert!(!text.contains("secret-panic-message"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    check_problem(status, &headers, &bytes, 500);
    // The server keeps serving.
    assert_eq!(app.get("/health/live").await.status(), 200);
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_kept_when_valid_and_replaced_otherwise() {
    let app = spawn(&[]).await;
    let send = |id: String, path: &'static str| {
        let request = app.client.get(app.url(path)).header("x-request-id", id);
        async move { request.send().await.unwrap() }
    };
    for id in ["abc-123_X.y".to_string(), "a".repeat(128)] {
        let response = send(id.clone(), "/health/live").await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(response.headers(), "x-request-id"),
            Some(id.as_str())
        );
        let (headers, body) = problem(send(id.clone(), "/missing").await, 404).await;
        assert_eq!(header(&headers, "x-request-id"), Some(id.as_str()));
        assert_eq!(body["request_id"], id.as_str());
    }
    for id in [
        "has spaces in it".to_string(),
        "a".repeat(129),
        "<script>".to_string(),
    ] {
        let response = send(id.clone(), "/health/live").await;
        assert_eq!(response.status(), 200);
        let fresh = header(response.headers(), "x-request-id").expect("x-request-id");
        assert_ne!(fresh, id);
        assert!(
            keel::http::middleware::request_id::is_acceptable(fresh),
            "{fresh}"
        );
        let (headers, body) = problem(send(id.clone(), "/missing").await, 404).await;
        assert_ne!(header(&headers, "x-request-id"), Some(id.as_str()));
        assert_ne!(body["request_id"], id.as_str());
    }
    // Without an inbound id each response gets its own.
    let a = app.get("/health/live").await;
    let b = app.get("/health/live").await;
    assert_ne!(a.headers()["x-request-id"], b.headers()["x-request-id"]);
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_and_no_hsts_in_development() {
    let app = spawn(&[("APP_ENV", "development")]).await;
    for path in ["/health/live", "/health", "/metrics"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_security_headers(response.headers());
        assert!(response
            .headers()
            .get("strict-transport-security")
            .is_none());
    }
    let (headers, _) = problem(app.get("/missing").await, 404).await;
    assert!(headers.get("strict-transport-security").is_none());
    let (headers, _) = problem(app.post_json("/items", &json!({})).await, 422).await;
    assert!(headers.get("strict-transport-security").is_none());
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_outside_development() {
    let app = spawn(&[("APP_ENV", "staging")]).await;
    let response = app.get("/health/live").await;
    assert_eq!(response.status(), 200);
    assert_security_headers(response.headers());
    let hsts = header(response.headers(), "strict-transport-security").expect("hsts");
    assert!(hsts.contains("max-age="), "{hsts}");
    let (headers, _) = problem(app.get("/missing").await, 404).await;
    assert!(headers.get("strict-transport-security").is_some());
    app.shutdown().await.unwrap();
}

/// A CORS preflight (`preflight`) or a simple GET from `origin`; returns the status and the
/// `access-control-allow-origin` answered, if any.
async fn from_origin(app: &TestApp, origin: &str, preflight: bool) -> (u16, Option<String>) {
    let request = if preflight {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/items"))
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
    } else {
        app.client.get(app.url("/health/live"))
    };
    let response = request.header("origin", origin).send().await.unwrap();
    let status = response.status().as_u16();
    assert!(status < 500, "{status}");
    assert_security_headers(response.headers());
    let allowed = header(response.headers(), "access-control-allow-origin").map(str::to_string);
    (status, allowed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_listed_origins() {
    let allowed = "https://app.example.com";
    let app = spawn(&[("CORS_ALLOWED_ORIGINS", allowed)]).await;
    for preflight in [true, false] {
        let (status, origin) = from_origin(&app, allowed, preflight).await;
        assert_eq!(status, 200, "preflight: {preflight}");
        assert_eq!(origin.as_deref(), Some(allowed), "preflight: {preflight}");
        let (_, origin) = from_origin(&app, "https://evil.example.com", preflight).await;
        assert_eq!(origin, None, "preflight: {preflight}");
    }
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cors_without_configuration() {
    let app = spawn(&[]).await;
    for origin in ["https://app.example.com", "http://localhost:3000"] {
        for preflight in [true, false] {
            let (_, allowed) = from_origin(&app, origin, preflight).await;
            assert_eq!(allowed, None, "{origin} preflight: {preflight}");
        }
    }
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_requests_time_out_with_503() {
    let app = spawn(&[("REQUEST_TIMEOUT_SECONDS", "1")]).await;
    let started = Instant::now();
    let (_, body) = problem(app.get("/slow").await, 503).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(2500),
        "answered after {elapsed:?}"
    );
    assert!(body["detail"].as_str().unwrap().contains("1 s"), "{body}");
    app.shutdown().await.unwrap();
}

/// A route whose handler announces that it started, then sleeps `for_ms`.
fn sleepy_routes(started: Arc<Notify>, for_ms: u64) -> Router<AppState> {
    Router::new().route(
        "/sleepy",
        get(move || {
            let started = started.clone();
            async move {
                started.notify_one();
                tokio::time::sleep(Duration::from_millis(for_ms)).await;
                "done"
            }
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_requests_finish() {
    let started = Arc::new(Notify::new());
    let mut app = TestApp::builder(TestDb::sqlite())
        .routes(sleepy_routes(started.clone(), 1500))
        .spawn()
        .await;
    let request = app.client.get(app.url("/sleepy")).send();
    let in_flight = tokio::spawn(request);
    tokio::time::timeout(Duration::from_secs(5), started.notified())
        .await
        .expect("the handler started");
    app.begin_shutdown();
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "done");
    let finished = tokio::time::timeout(Duration::from_secs(10), app.finished())
        .await
        .expect("the server stops");
    assert!(finished.is_ok(), "{finished:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_during_the_drain_while_liveness_holds() {
    let mut app = TestApp::builder(TestDb::sqlite())
        .env("SHUTDOWN_DRAIN_SECONDS", "2")
        .spawn()
        .await;
    assert_eq!(app.get("/health/ready").await.status(), 200);
    let began = Instant::now();
    app.begin_shutdown();
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let status = app.get("/health/ready").await.status();
        if status == 503 {
            break;
        }
        assert!(Instant::now() < deadline, "/health/ready still {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let live = app.get("/health/live").await;
    assert_eq!(live.status(), 200);
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "checked within the drain window"
    );
    let finished = tokio::time::timeout(Duration::from_secs(10), app.finished())
        .await
        .expect("the server stops");
    assert!(finished.is_ok(), "{finished:?}");
    assert!(
        began.elapsed() >= Duration::from_secs(2),
        "the drain lasted SHUTDOWN_DRAIN_SECONDS"
    );
}
