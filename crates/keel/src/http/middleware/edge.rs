//! The edge: one middleware that runs, in order, the request id, the body-size check, the request
//! timeout, the problem bodies, the security headers and the access log with metrics. Each concern
//! lives in its own module; running them in one layer keeps a request to one middleware hop.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::limits::Limits;
use super::security::Hsts;
use super::{access_log, errors, limits, request_id, security};
use crate::config::Role;
use crate::metrics;

#[derive(Debug, Clone, Copy)]
pub struct Edge {
    pub role: Role,
    pub hsts: Hsts,
    pub limits: Limits,
}

pub async fn layer(State(edge): State<Arc<Edge>>, mut req: Request, next: Next) -> Response {
    let id = request_id::assign(&mut req);
    let scope_id = id.clone();
    request_id::scoped(scope_id, async move {
        let started = Instant::now();
        let method = req.method().clone();
        let in_flight = &metrics::global().http_in_flight;
        in_flight.add(&[], 1);
        let response = match limits::refuse_oversized(&req, &edge.limits) {
            Some(refused) => refused,
            None => limits::within_timeout(next.run(req), &edge.limits).await,
        };
        let mut response = errors::to_problem(response);
        in_flight.add(&[], -1);
        access_log::record(&method, &response, started, edge.role);
        security::apply(&mut response, edge.hsts);
        request_id::echo(&mut response, &id);
        response
    })
    .await
}
