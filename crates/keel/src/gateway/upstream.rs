//! The connection to the app: one pooled HTTP/1.1 client with keep-alive, bodies streamed both
//! ways (a chunk is passed on as it arrives; nothing is collected), protocol switches spliced.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Request, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use super::settings::GatewaySettings;

/// The pooled client to the app.
pub type UpstreamClient = Client<HttpConnector, Upload>;

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(60);

pub fn client(settings: &GatewaySettings) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    // Small requests and answers leave at once rather than waiting on Nagle's algorithm.
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(settings.connect_timeout));
    connector.set_keepalive(Some(POOL_IDLE));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector)
}

/// Why a request could not be answered by the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No connection could be made (refused, unreachable, connect timeout): 502.
    Connect,
    /// The connection failed while the request or the answer's head was under way: 502.
    Broken,
    /// The app did not start its answer within the timeout: 504.
    Timeout,
    /// The client paused longer than the timeout while sending its body: 408.
    ClientStalled,
    /// The client's body broke off: 400.
    ClientAborted,
    /// The client's body went past the rule's limit: 413.
    TooLarge,
}

impl Failure {
    /// The `kind` label of `keel_gateway_upstream_errors_total`, for the app's failures.
    pub fn upstream_kind(self) -> Option<&'static str> {
        match self {
            Failure::Connect => Some("connect"),
            Failure::Broken => Some("broken"),
            Failure::Timeout => Some("timeout"),
            _ => None,
        }
    }
}

const STREAMING: u8 = 0;
const SENT: u8 = 1;
const STALLED: u8 = 2;
const ABORTED: u8 = 3;
const TOO_LARGE: u8 = 4;

/// How the client's body is going, shared with the request's wait for the answer.
#[derive(Debug, Default)]
pub struct UploadState(AtomicU8);

impl UploadState {
    fn set(&self, state: u8) {
        self.0.store(state, Ordering::Relaxed);
    }

    fn get(&self) -> u8 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The client's body on its way to the app, counted against the rule's limit, and failed when
/// the client pauses longer than the timeout.
pub struct Upload {
    body: Option<Body>,
    limit: Option<u64>,
    sent: u64,
    idle: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    state: Option<Arc<UploadState>>,
}

/// Why the client's body stopped.
#[derive(Debug, thiserror::Error)]
#[error("the client's request body stopped")]
pub struct UploadError;

impl Upload {
    /// `body` as an upload; the state is shared only when there is a body to send.
    pub fn new(
        body: Body,
        limit: Option<u64>,
        idle: Duration,
    ) -> (Upload, Option<Arc<UploadState>>) {
        use hyper::body::Body as _;
        if body.is_end_stream() {
            return (Upload::empty(), None);
        }
        let state = Arc::new(UploadState::default());
        let upload = Upload {
            body: Some(body),
            limit,
            sent: 0,
            idle,
            sleep: None,
            state: Some(state.clone()),
        };
        (upload, Some(state))
    }

    pub fn empty() -> Upload {
        Upload {
            body: None,
            limit: None,
            sent: 0,
            idle: Duration::ZERO,
            sleep: None,
            state: None,
        }
    }

    fn fail(&mut self, state: u8) -> Poll<Option<Result<Frame<Bytes>, UploadError>>> {
        if let Some(shared) = &self.state {
            shared.set(state);
        }
        self.body = None;
        Poll::Ready(Some(Err(UploadError)))
    }
}

impl hyper::body::Body for Upload {
    type Data = Bytes;
    type Error = UploadError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UploadError>>> {
        let this = self.get_mut();
        let Some(body) = this.body.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len() as u64;
                    if this.limit.is_some_and(|limit| this.sent > limit) {
                        return this.fail(TOO_LARGE);
                    }
                }
                if let Some(sleep) = this.sleep.as_mut() {
                    sleep
                        .as_mut()
                        .reset(tokio::time::Instant::now() + this.idle);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(_))) => this.fail(ABORTED),
            Poll::Ready(None) => {
                if let Some(shared) = &this.state {
                    shared.set(SENT);
                }
                this.body = None;
                Poll::Ready(None)
            }
            Poll::Pending => {
                let idle = this.idle;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => this.fail(STALLED),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body
            .as_ref()
            .is_none_or(hyper::body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        match &self.body {
            Some(body) => hyper::body::Body::size_hint(body),
            None => SizeHint::with_exact(0),
        }
    }
}

/// Sends `req` and waits for the answer's head: at most `timeout` from when the client's body
/// has been sent (while it is still arriving, the client's own pauses are what is timed).
pub async fn send(
    client: &UpstreamClient,
    req: Request<Upload>,
    upload: Option<Arc<UploadState>>,
    timeout: Duration,
) -> Result<Response<Incoming>, Failure> {
    let answer = client.request(req);
    tokio::pin!(answer);
    let sleep = tokio::time::sleep(timeout);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            biased;
            result = &mut answer => {
                return result.map_err(|e| classify(&e, upload.as_deref()));
            }
            () = &mut sleep => {
                if upload.as_deref().is_some_and(|u| u.get() == STREAMING) {
                    sleep.as_mut().reset(tokio::time::Instant::now() + timeout);
                    continue;
                }
                return Err(Failure::Timeout);
            }
        }
    }
}

fn classify(error: &hyper_util::client::legacy::Error, upload: Option<&UploadState>) -> Failure {
    match upload.map(UploadState::get) {
        Some(STALLED) => return Failure::ClientStalled,
        Some(ABORTED) => return Failure::ClientAborted,
        Some(TOO_LARGE) => return Failure::TooLarge,
        _ => {}
    }
    if error.is_connect() {
        Failure::Connect
    } else {
        Failure::Broken
    }
}

/// Once both sides have switched protocols, copies bytes both ways until either closes.
pub fn splice(client: hyper::upgrade::OnUpgrade, app: hyper::upgrade::OnUpgrade) {
    tokio::spawn(async move {
        let (client, app) = match tokio::try_join!(client, app) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "protocol switch not completed");
                return;
            }
        };
        let (mut client, mut app) = (TokioIo::new(client), TokioIo::new(app));
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut app).await {
            tracing::debug!(error = %e, "switched connection ended with an error");
        }
    });
}
