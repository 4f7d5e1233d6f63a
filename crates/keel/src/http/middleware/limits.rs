//! Body size and request time limits.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::http::problem::ApiError;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub body_bytes: usize,
    pub timeout: Duration,
    /// The gateway is on: a request may go to the app, whose bodies have limits of their own
    /// (the rule's `body_limit`), so the declared length is left to the route (Keel's own routes
    /// refuse an oversized body as they read it).
    pub gateway: bool,
}

/// Whether the request declares a `content-length` above the limit: it is refused before the
/// body is read. Bodies of unknown length are cut at the limit by the extractors
/// (`DefaultBodyLimit`).
///
/// Uploads through the filesystem storage backend's links are exempt: each link carries its own
/// limit, checked as the body streams to storage.
pub fn oversized(req: &Request, limits: &Limits) -> bool {
    if limits.gateway || req.uri().path().starts_with(crate::storage::LINK_PATH) {
        return false;
    }
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limits.body_bytes as u64)
}

/// The answer to an oversized request: 413, and the connection closed (the body is not read).
pub fn too_large(limits: &Limits) -> Response {
    let mut problem = ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE);
    problem.detail = format!(
        "The request body is larger than {} bytes.",
        limits.body_bytes
    );
    let mut response = problem.into_response();
    response.headers_mut().insert(
        header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

/// The answer when a request outlives `limits.timeout`: a 503 problem.
pub fn timed_out(limits: &Limits) -> Response {
    tracing::warn!(timeout_s = limits.timeout.as_secs(), "request timed out");
    ApiError::unavailable(
        "timeout",
        "Request timed out",
        format!(
            "The request took longer than {} s.",
            limits.timeout.as_secs()
        ),
    )
    .into_response()
}

pin_project_lite::pin_project! {
    /// `future`, or `None` once `deadline` passes. The timer is armed only when the future does
    /// not finish on its first poll, so requests answered at once (cached tokens, memory-backed
    /// limits) never touch the timer wheel. A request the gateway forwards to the app is left
    /// to the gateway's own timeouts.
    pub struct Deadline<F> {
        #[pin]
        future: F,
        deadline: tokio::time::Instant,
        sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
        exempt: bool,
    }
}

impl<F> Deadline<F> {
    pub fn new(future: F, limits: &Limits) -> Self {
        Self {
            future,
            deadline: tokio::time::Instant::now() + limits.timeout,
            sleep: None,
            exempt: false,
        }
    }
}

impl<F: std::future::Future> std::future::Future for Deadline<F> {
    type Output = Option<F::Output>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Some(output));
        }
        if *this.exempt {
            return Poll::Pending;
        }
        // The gateway names its rule before its first wait; its own timeouts govern from there.
        if this.sleep.is_none() && crate::http::middleware::request_id::in_gateway() {
            *this.exempt = true;
            return Poll::Pending;
        }
        let deadline = *this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}
