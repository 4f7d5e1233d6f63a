//! A panic in a handler becomes a 500 problem with no detail, logged with the request id. With
//! error reporting, the panic hook has reported it already, with its stack
//! ([`crate::telemetry::sentry`]).

use std::any::Any;

use axum::response::{IntoResponse, Response};

use super::request_id;
use crate::http::problem::ApiError;

/// Marks the answer to a panic (already reported as such).
#[derive(Debug, Clone, Copy)]
pub struct Panicked;

pub fn respond(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into());
    tracing::error!(
        request_id = request_id::current().unwrap_or_default(),
        panic = %message,
        report = "exception",
        "handler panicked"
    );
    let mut response = ApiError::internal().into_response();
    response.extensions_mut().insert(Panicked);
    response
}
