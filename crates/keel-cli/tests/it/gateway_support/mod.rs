//! The app behind the gateway in the gateway's tests: a real HTTP server on a port of its own that
//! reports the headers it was given, counts uploads as they stream in, streams downloads it makes
//! up as it goes, answers server-sent events one at a time, echoes WebSocket messages, can be
//! slow or stopped, and counts the connections it is given. [`ClosingApp`] is an app on raw
//! keep-alive connections that closes them when told to.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use base64::Engine;
use hyper::body::{Body as _, Frame, SizeHint};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, Mutex};

/// The app, serving until [`Upstream::stop`].
pub struct Upstream {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
    /// The second event of `/events` is sent when the test says so.
    pub events: Arc<Mutex<Option<mpsc::Sender<Bytes>>>>,
    pub connections: Arc<Connections>,
}

/// The connections an app was given: how many in all, and how many are open.
#[derive(Debug, Default)]
pub struct Connections {
    accepted: AtomicUsize,
    open: AtomicUsize,
}

impl Connections {
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

impl Upstream {
    /// Starts on a free port.
    pub async fn start() -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the app");
        Self::serve(listener).await
    }

    /// Starts again on the port it had.
    pub async fn restart(addr: SocketAddr) -> Upstream {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind the app's port again");
        Self::serve(listener).await
    }

    async fn serve(listener: tokio::net::TcpListener) -> Upstream {
        let addr = listener.local_addr().expect("the app's address");
        let events: Arc<Mutex<Option<mpsc::Sender<Bytes>>>> = Arc::default();
        let router = app(events.clone());
        let connections = Arc::new(Connections::default());
        let listener = Counting {
            listener,
            connections: connections.clone(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Upstream {
            addr,
            stop: Some(stop),
            served: Some(served),
            events,
            connections,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops listening and closes every connection.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), served).await;
        }
    }
}

/// A listener that counts the connections it accepts and those still open.
struct Counting {
    listener: tokio::net::TcpListener,
    connections: Arc<Connections>,
}

impl axum::serve::Listener for Counting {
    type Io = CountedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (CountedStream, SocketAddr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.listener).await;
        self.connections.accepted.fetch_add(1, Ordering::SeqCst);
        self.connections.open.fetch_add(1, Ordering::SeqCst);
        let counted = CountedStream {
            stream,
            connections: self.connections.clone(),
        };
        (counted, addr)
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// An accepted connection, counted as open until it is dropped.
struct CountedStream {
    stream: tokio::net::TcpStream,
    connections: Arc<Connections>,
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        self.connections.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl tokio::io::AsyncRead for CountedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for CountedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// An app on raw keep-alive connections that closes them when told to: each connection still
/// idle then (or once its request is answered) is closed without a word, as an app closing idle
/// keep-alive connections does. `/close` is answered with `connection: close`. It answers
/// `METHOD TARGET BODY_LENGTH`.
pub struct ClosingApp {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    close_idle: tokio::sync::watch::Sender<u64>,
    served: tokio::task::JoinHandle<()>,
}

impl ClosingApp {
    pub async fn start() -> ClosingApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the app");
        let addr = listener.local_addr().expect("the app's address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (close_idle, _) = tokio::sync::watch::channel(0u64);
        let served = {
            let (accepted, closed, close_idle) =
                (accepted.clone(), closed.clone(), close_idle.clone());
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let told = close_idle.subscribe();
                    tokio::spawn(keep_alive(stream, told, closed.clone()));
                }
            })
        };
        ClosingApp {
            addr,
            accepted,
            closed,
            close_idle,
            served,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The connections closed because the app was told to.
    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }

    /// Closes the connections open now, each once it is idle.
    pub fn close_idle(&self) {
        self.close_idle.send_modify(|n| *n += 1);
    }
}

impl Drop for ClosingApp {
    fn drop(&mut self) {
        self.served.abort();
    }
}

/// Serves requests on `stream` until the peer closes it, an answer says `connection: close`,
/// or the app is told to close it.
async fn keep_alive(
    mut stream: tokio::net::TcpStream,
    mut told: tokio::sync::watch::Receiver<u64>,
    closed: Arc<AtomicUsize>,
) {
    let mut buf = Vec::new();
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let idle = buf.is_empty();
            tokio::select! {
                read = stream.read(&mut chunk) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                },
                _ = told.changed(), if idle => {
                    let _ = stream.shutdown().await;
                    closed.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < end + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..end + length);
        let mut words = head.split(' ');
        let (method, target) = (words.next().unwrap_or("?"), words.next().unwrap_or("?"));
        let body = format!("{method} {target} {length}");
        let close = target == "/close";
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{}\r\n{body}",
            body.len(),
            if close { "connection: close\r\n" } else { "" },
        );
        if stream.write_all(answer.as_bytes()).await.is_err() || close {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

fn app(events: Arc<Mutex<Option<mpsc::Sender<Bytes>>>>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/public/whoami", get(whoami))
        .route("/api/whoami", any(whoami))
        .route("/premium/whoami", get(whoami))
        .route(
            "/api/missing",
            get(|| async { (StatusCode::NOT_FOUND, "the app's own 404") }),
        )
        .route("/api/upload", post(upload))
        .route("/small/upload", post(upload))
        .route("/base/api/upload", post(upload))
        .route("/api/download", get(download))
        .route("/api/slow", get(slow))
        .route("/api/ws", get(websocket))
        .route(
            "/api/events",
            get(move || {
                let events = events.clone();
                async move { server_sent_events(events).await }
            }),
        )
        .fallback(whoami)
}

/// The headers the app was given, as JSON (names lowercased; a missing one is absent), and
/// the request target under `:target`.
async fn whoami(req: Request) -> Json<serde_json::Value> {
    let headers: &HeaderMap = req.headers();
    let mut out = serde_json::Map::new();
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    out.insert(":target".into(), target.into());
    for name in headers.keys() {
        let values = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(" | ");
        out.insert(name.as_str().to_string(), values.into());
    }
    Json(out.into())
}

/// Counts the body as it streams in; answers the count.
async fn upload(req: Request) -> String {
    let mut body = req.into_body();
    let mut bytes = 0u64;
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        match frame {
            Ok(frame) => bytes += frame.data_ref().map_or(0, |d| d.len() as u64),
            Err(e) => return format!("error: {e}"),
        }
    }
    bytes.to_string()
}

#[derive(Deserialize)]
struct Size {
    bytes: u64,
}

/// `bytes` bytes, made 64 KiB at a time as the client reads them.
async fn download(Query(size): Query<Size>) -> Response {
    Body::new(Generated { left: size.bytes }).into_response()
}

struct Generated {
    left: u64,
}

const CHUNK: usize = 64 * 1024;

impl hyper::body::Body for Generated {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(CHUNK as u64);
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'k'; n as usize])))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(30)).await;
    "late"
}

/// `text/event-stream`: the first event at once, the next when the test sends it, then the end.
async fn server_sent_events(events: Arc<Mutex<Option<mpsc::Sender<Bytes>>>>) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let _ = tx.send(Bytes::from_static(b"data: one\n\n")).await;
    *events.lock().await = Some(tx);
    let mut response = Body::new(Channel(rx)).into_response();
    response.headers_mut().insert(
        "content-type",
        axum::http::HeaderValue::from_static("text/event-stream"),
    );
    response
}

struct Channel(mpsc::Receiver<Bytes>);

impl hyper::body::Body for Channel {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// The WebSocket handshake (RFC 6455 §4.2.2), then each message from the client sent back.
async fn websocket(mut req: Request) -> Response {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return (StatusCode::BAD_REQUEST, "no key").into_response();
    };
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let mut io = hyper_util::rt::TokioIo::new(upgraded);
        while let Ok(message) = read_frame(&mut io).await {
            let frame = frame(&message, None);
            if io.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", accept(key.as_bytes()))
        .body(Body::empty())
        .expect("the handshake answer")
}

/// `Sec-WebSocket-Accept` for a key.
pub fn accept(key: &[u8]) -> String {
    let mut input = key.to_vec();
    input.extend_from_slice(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// One short text frame (under 126 bytes), masked with `mask` when given (a client's frames).
pub fn frame(payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    assert!(payload.len() < 126, "short frames only");
    let mut out = vec![0x81, payload.len() as u8];
    match mask {
        Some(mask) => {
            out[1] |= 0x80;
            out.extend_from_slice(&mask);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// Reads one short frame and returns its payload, unmasked.
pub async fn read_frame<R: tokio::io::AsyncRead + Unpin>(io: &mut R) -> std::io::Result<Vec<u8>> {
    let mut head = [0u8; 2];
    io.read_exact(&mut head).await?;
    let len = usize::from(head[1] & 0x7f);
    let mask = if head[1] & 0x80 != 0 {
        let mut mask = [0u8; 4];
        io.read_exact(&mut mask).await?;
        Some(mask)
    } else {
        None
    };
    let mut payload = vec![0u8; len];
    io.read_exact(&mut payload).await?;
    if let Some(mask) = mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    Ok(payload)
}
