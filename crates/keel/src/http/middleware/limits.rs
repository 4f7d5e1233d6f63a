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
}

/// A declared `content-length` above the limit is refused before the body is read; bodies of
/// unknown length are cut at the limit by the extractors (`DefaultBodyLimit`).
pub fn refuse_oversized(req: &Request, limits: &Limits) -> Option<Response> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_none_or(|n| n <= limits.body_bytes as u64) {
        return None;
    }
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
    Some(response)
}

/// Runs `future` (the rest of the request) for at most `limits.timeout`; 503 problem after.
pub async fn within_timeout(
    future: impl std::future::Future<Output = Response>,
    limits: &Limits,
) -> Response {
    match tokio::time::timeout(limits.timeout, future).await {
        Ok(response) => response,
        Err(_) => {
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
    }
}
