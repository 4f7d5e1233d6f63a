//! A panic in a handler becomes a 500 problem with no detail, logged with the request id.

use std::any::Any;

use axum::response::{IntoResponse, Response};

use super::request_id;
use crate::http::problem::ApiError;

pub fn respond(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into());
    tracing::error!(
        request_id = request_id::current().unwrap_or_default(),
        panic = %message,
        "handler panicked"
    );
    ApiError::internal().into_response()
}
