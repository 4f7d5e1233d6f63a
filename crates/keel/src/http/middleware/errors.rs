//! Every error leaves as problem+json: a 4xx or 5xx produced without a problem body (routing,
//! method mismatch, limits, layers) is given the generic problem for its status. Headers such as
//! `allow`, `retry-after` and `www-authenticate` are kept.

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::http::problem::{ApiError, PROBLEM_CONTENT_TYPE};

/// Marks a response whose error status comes with a body of its own that must reach the client
/// (the health reports, which say which check failed).
#[derive(Debug, Clone, Copy)]
pub struct OwnBody;

/// `response` as a problem when it is an error without a problem body.
pub fn to_problem(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || is_problem(&response)
        || response.extensions().get::<OwnBody>().is_some()
    {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let problem = ApiError::from_status(status).into_response();
    let (problem_parts, body) = problem.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in problem_parts.headers.iter() {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, Body::new(body))
}

fn is_problem(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_CONTENT_TYPE))
}
