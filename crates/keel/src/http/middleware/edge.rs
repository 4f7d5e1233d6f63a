//! The edge: one service that runs, in order, the request id, the input refusals (NUL
//! characters, too many header fields), the body-size check, the request
//! timeout, panic capture, the problem bodies, the security headers and the access log with
//! metrics, all with the request's error-reporting hub current. Each concern lives in its own
//! module; running them in one hand-written service keeps a request to one hop with no allocation
//! of its own (with `SENTRY_DSN`, one: the request's hub).

use std::convert::Infallible;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderValue, Method};
use axum::response::Response;

use super::limits::{Deadline, Limits};
use super::security::Hsts;
use super::{access_log, errors, input, limits, panic, request_id, security};
use crate::config::Role;
use crate::http::problem::ApiError;
use crate::metrics;
use crate::telemetry::sentry::scoped::{self, WorkHub};

#[derive(Debug, Clone, Copy)]
pub struct Edge {
    pub role: Role,
    pub hsts: Hsts,
    pub limits: Limits,
}

/// Wraps a service in the [`Edge`].
#[derive(Debug, Clone)]
pub struct EdgeLayer(Arc<Edge>);

impl EdgeLayer {
    pub fn new(edge: Edge) -> Self {
        Self(Arc::new(edge))
    }
}

impl<S> tower::Layer<S> for EdgeLayer {
    type Service = EdgeService<S>;

    fn layer(&self, inner: S) -> EdgeService<S> {
        EdgeService {
            inner,
            edge: self.0.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EdgeService<S> {
    inner: S,
    edge: Arc<Edge>,
}

/// The request's future: the rest of the stack inside the request scope, then the edge's own
/// work on the response.
pub type EdgeFuture<F> = tracing::instrument::Instrumented<request_id::Scoped<Finish<F>>>;

impl<S> tower::Service<Request> for EdgeService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let started = Instant::now();
        let id = request_id::assign(&req);
        let method = req.method().clone();
        let span = request_id::span(&id, &method);
        let hub = scoped::request_hub(id.to_str().unwrap_or_default());
        metrics::global().in_flight.add(1);
        let stage = if let Some(problem) = input::refusal(&req) {
            Stage::Early {
                answer: Some(Early::Refused(problem)),
            }
        } else if limits::oversized(&req, &self.edge.limits) {
            Stage::Early {
                answer: Some(Early::Oversized),
            }
        } else {
            // Inside the span: what the stack does on the call itself (routing) is recorded in it.
            let entered = span.enter();
            let called = scoped::run(&hub, || {
                catch_unwind(AssertUnwindSafe(|| self.inner.call(req)))
            });
            drop(entered);
            match called {
                Ok(future) => Stage::Running {
                    future: Deadline::new(future, &self.edge.limits),
                },
                Err(payload) => Stage::Early {
                    answer: Some(Early::Panicked(payload)),
                },
            }
        };
        let finish = Finish {
            stage,
            id: id.clone(),
            method,
            started,
            edge: self.edge.clone(),
            hub,
        };
        tracing::Instrument::instrument(request_id::scope(id, finish), span)
    }
}

/// An answer decided before the rest of the stack runs; it is made inside the request-id scope,
/// so its problem quotes the id.
enum Early {
    Refused(ApiError),
    Oversized,
    Panicked(Box<dyn std::any::Any + Send>),
}

pin_project_lite::pin_project! {
    #[project = StageProj]
    enum Stage<F> {
        Early { answer: Option<Early> },
        Running { #[pin] future: Deadline<F> },
    }
}

pin_project_lite::pin_project! {
    /// The rest of the stack, then problem bodies, metrics and the access log, security headers
    /// and the request id on the response.
    #[project = FinishProj]
    pub struct Finish<F> {
        #[pin]
        stage: Stage<F>,
        id: HeaderValue,
        method: Method,
        started: Instant,
        edge: Arc<Edge>,
        hub: WorkHub,
    }
}

impl<F> Future for Finish<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let hub = this.hub.clone();
        scoped::run(&hub, || finish(this, cx))
    }
}

/// One poll of [`Finish`].
fn finish<F>(this: FinishProj<'_, F>, cx: &mut Context<'_>) -> Poll<Result<Response, Infallible>>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    let response = match this.stage.project() {
        StageProj::Early { answer } => match answer.take() {
            Some(Early::Refused(problem)) => {
                Some(axum::response::IntoResponse::into_response(problem))
            }
            Some(Early::Oversized) => Some(limits::too_large(&this.edge.limits)),
            Some(Early::Panicked(payload)) => Some(panic::respond(payload)),
            None => None,
        },
        StageProj::Running { future } => {
            match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(Some(Ok(response)))) => Some(response),
                Ok(Poll::Ready(Some(Err(never)))) => match never {},
                Ok(Poll::Ready(None)) => Some(limits::timed_out(&this.edge.limits)),
                // A panicked future is not polled again: the answer is the 500.
                Err(payload) => Some(panic::respond(payload)),
            }
        }
    };
    let Some(response) = response else {
        return Poll::Pending;
    };
    let mut response = errors::to_problem(response);
    metrics::global().in_flight.add(-1);
    access_log::record(this.method, &response, *this.started, this.edge.role);
    security::apply(&mut response, this.edge.hsts);
    request_id::echo(&mut response, this.id.clone());
    Poll::Ready(Ok(response))
}
