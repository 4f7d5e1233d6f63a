//! One log line and the request metrics per request: request id, method, matched route (never
//! the raw path, which may carry ids or tokens), status, latency and role.

use std::time::Instant;

use axum::http::Method;
use axum::response::Response;

use super::request_id;
use crate::config::Role;

/// Logs the request and records its metrics (and reports a 5xx to error tracking). The log line
/// of a 5xx carries `report`: the failure is reported already, the line is only a breadcrumb.
pub fn record(method: &Method, response: &Response, started: Instant, role: Role) {
    let metrics = crate::metrics::global();
    let matched = request_id::current_route();
    let route = matched.as_ref().map_or("unmatched", |r| r.as_str());
    let status = response.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    let latency_ms = elapsed * 1000.0;
    metrics
        .http_requests
        .inc(&[method.as_str(), route, status_str(status).as_ref()]);
    metrics
        .http_duration
        .observe(&[method.as_str(), route], elapsed);
    // 503 is an answer the service means (not ready, switched off, timed out), not a failure.
    let failed = status >= 500 && status != 503;
    if !failed && !tracing::enabled!(tracing::Level::INFO) {
        return;
    }
    let request_id = request_id::current().unwrap_or_default();
    if failed {
        // A panic is reported by the panic hook, with its stack; any other 5xx here.
        let panicked = response
            .extensions()
            .get::<super::panic::Panicked>()
            .is_some();
        if !panicked {
            crate::telemetry::sentry::scoped::capture_http_failure(method.as_str(), route, status);
        }
        let report = if panicked { "exception" } else { "http_5xx" };
        tracing::error!(request_id, method = %method, route, status, latency_ms, role = role.as_str(), report, "request");
    } else {
        tracing::info!(request_id, method = %method, route, status, latency_ms, role = role.as_str(), "request");
    }
}

/// The status as label text, without allocating for the common ones.
fn status_str(status: u16) -> std::borrow::Cow<'static, str> {
    match status {
        200 => "200".into(),
        201 => "201".into(),
        202 => "202".into(),
        204 => "204".into(),
        400 => "400".into(),
        401 => "401".into(),
        403 => "403".into(),
        404 => "404".into(),
        429 => "429".into(),
        500 => "500".into(),
        503 => "503".into(),
        other => other.to_string().into(),
    }
}
