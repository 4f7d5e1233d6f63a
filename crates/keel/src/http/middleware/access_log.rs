//! One log line and the request metrics per request: request id, method, matched route (never
//! the raw path, which may carry ids or tokens), status, latency and role.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::request_id;
use crate::config::Role;

/// The route template a request matched, carried from the router out to the access log.
#[derive(Debug, Clone)]
pub struct Route(pub String);

/// Applied with `Router::route_layer`: records the matched route on the response.
pub async fn record_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| Route(p.as_str().to_string()));
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

pub async fn layer(State(role): State<Role>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let metrics = crate::metrics::global();
    metrics.http_in_flight.add(&[], 1);
    let response = next.run(req).await;
    metrics.http_in_flight.add(&[], -1);
    let route = response
        .extensions()
        .get::<Route>()
        .map(|r| r.0.as_str())
        .unwrap_or("unmatched");
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let request_id = request_id::current().unwrap_or_default();
    let status_text = status.to_string();
    metrics
        .http_requests
        .inc(&[method.as_str(), route, &status_text]);
    metrics
        .http_duration
        .observe(&[method.as_str(), route], latency_ms / 1000.0);
    // 503 is an answer the service means (not ready, switched off, timed out), not a failure.
    if status >= 500 && status != 503 {
        tracing::error!(request_id, method = %method, route, status, latency_ms, role = role.as_str(), "request");
    } else {
        tracing::info!(request_id, method = %method, route, status, latency_ms, role = role.as_str(), "request");
    }
    response
}
