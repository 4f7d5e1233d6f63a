//! The client's body on its way to the app: streamed as it arrives (nothing is collected),
//! counted against the rule's limit, and failed when the client pauses longer than the timeout.
//! How it went is shared with the wait for the answer, which names the failure after it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use hyper::body::{Frame, SizeHint};

const STREAMING: u8 = 0;
const SENT: u8 = 1;
const STALLED: u8 = 2;
const ABORTED: u8 = 3;
const TOO_LARGE: u8 = 4;

/// How the client's body is going, shared with the request's wait for the answer.
#[derive(Debug, Default)]
pub struct UploadState(AtomicU8);

/// Where the client's body stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Streaming,
    Sent,
    /// The client paused longer than the timeout.
    Stalled,
    /// The client's body broke off.
    Aborted,
    /// The client's body went past the rule's limit.
    TooLarge,
}

impl UploadState {
    fn set(&self, state: u8) {
        self.0.store(state, Ordering::Relaxed);
    }

    pub fn progress(&self) -> Progress {
        match self.0.load(Ordering::Relaxed) {
            STREAMING => Progress::Streaming,
            SENT => Progress::Sent,
            STALLED => Progress::Stalled,
            ABORTED => Progress::Aborted,
            _ => Progress::TooLarge,
        }
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
