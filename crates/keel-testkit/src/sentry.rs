//! A fake of Sentry's ingestion endpoint, `POST /api/{project}/envelope/`, over real HTTP: it
//! reads the envelope format (a header line, then for each item a header line and a payload of
//! the length the header gives, or up to the next newline), plain or gzip-encoded, checks the
//! `X-Sentry-Auth` key, and records what arrives. It can be told to answer 429 with `Retry-After`
//! or `X-Sentry-Rate-Limits`, and to hold its answers (a slow Sentry) until released.
//!
//! ```ignore
//! let sentry = keel_testkit::FakeSentry::start().await;
//! // SENTRY_DSN = sentry.dsn()
//! let event = sentry.wait_for_event("a panic", Duration::from_secs(10), |e| e["tags"]["kind"] == "panic").await;
//! sentry.refuse(Refusal::RetryAfter(5));   // every envelope answered 429 until `accept()`
//! ```

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use tokio::sync::Notify;

use crate::fake_server::{self, FakeServer};

/// The project id in the fake's DSN.
pub const PROJECT: &str = "42";

/// The public key in the fake's DSN; envelopes signed with another are refused with 401.
pub const PUBLIC_KEY: &str = "fakesentrypublickey";

/// How the fake refuses envelopes while told to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 429 with `Retry-After: N` (seconds).
    RetryAfter(u64),
    /// 429 with `X-Sentry-Rate-Limits: VALUE` (e.g. `60:error:organization`).
    RateLimits(String),
}

/// One envelope as it arrived.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub received_at: Instant,
    /// The `X-Sentry-Auth` header.
    pub auth: String,
    /// Whether it came gzip-encoded.
    pub gzip: bool,
    pub header: Value,
    pub items: Vec<Item>,
}

/// One item of an envelope: its header and its payload.
#[derive(Debug, Clone)]
pub struct Item {
    pub header: Value,
    pub payload: Vec<u8>,
}

impl Item {
    /// The item's type (`event`, `session`, …).
    pub fn kind(&self) -> &str {
        self.header["type"].as_str().unwrap_or_default()
    }

    /// The payload as JSON (`Value::Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or(Value::Null)
    }
}

/// One request the fake answered, accepted or not.
#[derive(Debug, Clone)]
pub struct Request {
    pub at: Instant,
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    envelopes: Mutex<Vec<Envelope>>,
    requests: Mutex<Vec<Request>>,
    refusal: Mutex<Option<Refusal>>,
    held: AtomicBool,
    waiting: AtomicUsize,
    released: Notify,
}

impl Inner {
    fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake Sentry; dropping it stops the server.
#[derive(Clone)]
pub struct FakeSentry {
    server: Arc<FakeServer>,
    inner: Arc<Inner>,
}

impl FakeSentry {
    /// Starts the fake on a free local port. Panics when no port can be bound.
    pub async fn start() -> FakeSentry {
        let inner = Arc::new(Inner::default());
        let router = Router::new()
            .route("/api/{project}/envelope/", post(receive))
            .with_state(inner.clone());
        let server = match fake_server::start(router).await {
            Ok(server) => server,
            Err(e) => panic!("cannot start the fake Sentry: {e}"),
        };
        FakeSentry {
            server: Arc::new(server),
            inner,
        }
    }

    /// The DSN that sends to this fake.
    pub fn dsn(&self) -> String {
        format!("http://{PUBLIC_KEY}@{}/{PROJECT}", self.server.addr)
    }

    /// Every envelope accepted so far, in the order they arrived.
    pub fn envelopes(&self) -> Vec<Envelope> {
        Inner::lock(&self.inner.envelopes).clone()
    }

    /// Every request answered so far (accepted or refused), in order.
    pub fn requests(&self) -> Vec<Request> {
        Inner::lock(&self.inner.requests).clone()
    }

    /// The payloads of every `event` item accepted so far, in the order they arrived.
    pub fn events(&self) -> Vec<Value> {
        self.envelopes()
            .iter()
            .flat_map(|e| e.items.iter())
            .filter(|item| item.kind() == "event")
            .map(Item::json)
            .collect()
    }

    /// Every accepted envelope's raw text (headers and payloads), to search for what must not
    /// be there.
    pub fn raw_text(&self) -> String {
        let mut text = String::new();
        for envelope in self.envelopes() {
            text.push_str(&envelope.auth);
            text.push('\n');
            text.push_str(&envelope.header.to_string());
            for item in &envelope.items {
                text.push('\n');
                text.push_str(&item.header.to_string());
                text.push('\n');
                text.push_str(&String::from_utf8_lossy(&item.payload));
            }
            text.push('\n');
        }
        text
    }

    /// Answers every envelope with a 429 and `refusal`'s header until [`FakeSentry::accept`].
    pub fn refuse(&self, refusal: Refusal) {
        *Inner::lock(&self.inner.refusal) = Some(refusal);
    }

    /// Accepts envelopes again.
    pub fn accept(&self) {
        *Inner::lock(&self.inner.refusal) = None;
    }

    /// Holds every request unanswered until [`FakeSentry::release`]: a slow Sentry.
    pub fn hold(&self) {
        self.inner.held.store(true, Ordering::SeqCst);
    }

    /// Answers the held requests, and later ones at once.
    pub fn release(&self) {
        self.inner.held.store(false, Ordering::SeqCst);
        self.inner.released.notify_waiters();
    }

    /// How many requests are being held now.
    pub fn held_requests(&self) -> usize {
        self.inner.waiting.load(Ordering::SeqCst)
    }

    /// Waits for an accepted event that `matches`, or panics after `limit` with what arrived.
    pub async fn wait_for_event(
        &self,
        what: &str,
        limit: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            if let Some(event) = self.events().into_iter().find(|e| matches(e)) {
                return event;
            }
            if started.elapsed() > limit {
                panic!(
                    "the fake Sentry received no {what} within {limit:?}; events: {:#?}",
                    self.events()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn receive(
    State(inner): State<Arc<Inner>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if inner.held.load(Ordering::SeqCst) {
        inner.waiting.fetch_add(1, Ordering::SeqCst);
        let released = inner.released.notified();
        tokio::pin!(released);
        released.as_mut().enable();
        if inner.held.load(Ordering::SeqCst) {
            released.await;
        }
        inner.waiting.fetch_sub(1, Ordering::SeqCst);
    }
    let response = answer(&inner, &project, &headers, &body);
    Inner::lock(&inner.requests).push(Request {
        at: Instant::now(),
        status: response.status().as_u16(),
    });
    response
}

fn answer(inner: &Inner, project: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    if project != PROJECT {
        return (StatusCode::NOT_FOUND, "unknown project").into_response();
    }
    let auth = header("x-sentry-auth").to_string();
    if !auth.split(',').any(|part| {
        part.trim().trim_start_matches("Sentry ").trim() == format!("sentry_key={PUBLIC_KEY}")
    }) {
        return (StatusCode::UNAUTHORIZED, "bad sentry_key").into_response();
    }
    if let Some(refusal) = Inner::lock(&inner.refusal).clone() {
        let (name, value) = match refusal {
            Refusal::RetryAfter(seconds) => ("retry-after", seconds.to_string()),
            Refusal::RateLimits(limits) => ("x-sentry-rate-limits", limits),
        };
        let mut response = (StatusCode::TOO_MANY_REQUESTS, "rate limited").into_response();
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
        return response;
    }
    let gzip = match header("content-encoding") {
        "" | "identity" => false,
        "gzip" => true,
        other => {
            return (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported content-encoding {other}"),
            )
                .into_response()
        }
    };
    let text = if gzip {
        match gunzip(body) {
            Ok(text) => text,
            Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
        }
    } else {
        body.to_vec()
    };
    match parse(&text) {
        Ok((header, items)) => {
            let id = header["event_id"].clone();
            Inner::lock(&inner.envelopes).push(Envelope {
                received_at: Instant::now(),
                auth,
                gzip,
                header,
                items,
            });
            axum::Json(serde_json::json!({ "id": id })).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

/// Splits an envelope into its header and items.
pub fn parse(envelope: &[u8]) -> Result<(Value, Vec<Item>), String> {
    let (header, mut rest) = line(envelope);
    let header: Value =
        serde_json::from_slice(header).map_err(|e| format!("envelope header: {e}"))?;
    let mut items = Vec::new();
    while !rest.is_empty() {
        let (item_header, after) = line(rest);
        if item_header.is_empty() {
            rest = after;
            continue;
        }
        let item_header: Value =
            serde_json::from_slice(item_header).map_err(|e| format!("item header: {e}"))?;
        let (payload, after) = match item_header["length"].as_u64() {
            Some(length) => {
                let length = length as usize;
                if after.len() < length {
                    return Err(format!("item payload shorter than its length {length}"));
                }
                let (payload, after) = after.split_at(length);
                (payload, after.strip_prefix(b"\n").unwrap_or(after))
            }
            None => line(after),
        };
        items.push(Item {
            header: item_header,
            payload: payload.to_vec(),
        });
        rest = after;
    }
    Ok((header, items))
}

/// The text up to the next newline, and what follows it.
fn line(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(end) => (&bytes[..end], &bytes[end + 1..]),
        None => (bytes, &[]),
    }
}

const GZIP_CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Decodes a gzip member (RFC 1952), checking its CRC and length.
pub fn gunzip(data: &[u8]) -> Result<Vec<u8>, String> {
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    const FHCRC: u8 = 2;
    if data.len() < 18 || data[0] != 0x1f || data[1] != 0x8b || data[2] != 8 {
        return Err("not a gzip stream".into());
    }
    let flags = data[3];
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let len = data
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
            .ok_or("truncated gzip header")?;
        at += 2 + len;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let end = data
                .get(at..)
                .and_then(|rest| rest.iter().position(|&b| b == 0))
                .ok_or("truncated gzip header")?;
            at += end + 1;
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    let body = data
        .get(at..data.len() - 8)
        .ok_or("truncated gzip stream")?;
    let text = miniz_oxide::inflate::decompress_to_vec(body)
        .map_err(|e| format!("bad deflate data: {e:?}"))?;
    let trailer = &data[data.len() - 8..];
    let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
    if crc != GZIP_CRC.checksum(&text) || size != text.len() as u32 {
        return Err("gzip checksum or length mismatch".into());
    }
    Ok(text)
}

/// Encodes `data` as one gzip member (for tests of the fake itself).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    out.extend(miniz_oxide::deflate::compress_to_vec(data, 6));
    out.extend(GZIP_CRC.checksum(data).to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out
}
