//! Rate limiting at the edge, inside the router so the matched route template
//! (not the raw path) picks the policy. Unmatched paths (404) are not limited: they do no work
//! (no token check, no database), and limiting them would spend a backend call, a Redis round
//! trip, on each. Health and metrics routes are never limited.
//!
//! Every limited response carries the fields of the IETF httpapi draft
//! (`RateLimit-Policy: "default";q=300;w=60`, `RateLimit: "default";r=299;t=1`); a refusal is 429
//! with `Retry-After` and a `…/rate-limited` problem. When the backend cannot answer, requests
//! pass (fail open; counted and logged) or, with `RATE_LIMIT_FAIL_CLOSED=true`, get 503.
//!
//! Keys: `user` is the verified token's user (the client IP without a valid token), `tenant` its
//! tenant (else user, else IP), `ip` the client address. The raw token is never a key. A token
//! verified here is left in the request for the handler's `Principal`, so it is verified once.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context as TaskContext, Poll};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::request_id;
use crate::auth::Principal;
use crate::http::auth::request_token;
use crate::http::problem::ApiError;
use crate::http::state::AppState;
use crate::ratelimit::policy::SENSITIVE;
use crate::ratelimit::{ip, Decision, KeyKind, Outcome, Policy, RateLimiter};
use tower::ServiceExt;

pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// Limits every route it wraps by the route's policy, and names the matched route on the
/// response for the access log (a 429 names its route too).
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    state: AppState,
}

impl RateLimitLayer {
    pub fn new(state: &AppState) -> Self {
        Self {
            state: state.clone(),
        }
    }
}

impl<S> tower::Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> RateLimitService<S> {
        RateLimitService {
            inner,
            state: self.state.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RateLimitService<S> {
    inner: S,
    state: AppState,
}

/// What the outer layer learned, for [`named_policy`] layers on single routes.
#[derive(Debug, Clone)]
struct Context {
    state: AppState,
    client: Option<IpAddr>,
    route: MatchedPath,
    first: usize,
    more: Vec<usize>,
}

impl Context {
    fn applied(&self, index: usize) -> bool {
        self.first == index || self.more.contains(&index)
    }
}

impl<S> tower::Service<Request> for RateLimitService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Limited<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let Some(route) = req.extensions().get::<MatchedPath>().cloned() else {
            return Limited::passed(self.inner.call(req), None, None);
        };
        request_id::record_route(&route);
        let limiter = self.state.limiter.clone();
        let Some(policy) = limiter.policies().for_route(req.method(), route.as_str()) else {
            return Limited::passed(self.inner.call(req), Some(route), None);
        };
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let client = ip::client_ip(peer, req.headers(), limiter.trusted_proxies());
        // At once when the key needs no token verification and the backend no round trip.
        let source = self.state.settings.auth.token_header.as_str();
        let outcome = key_now(&req, policy, client, route.as_str(), source)
            .and_then(|key| limiter.check_now(policy, &key));
        let Some(outcome) = outcome else {
            let inner = self.inner.clone();
            let inner = std::mem::replace(&mut self.inner, inner);
            let state = self.state.clone();
            return Limited::boxed(Box::pin(
                async move { limit(state, route, req, inner).await },
            ));
        };
        req.extensions_mut().insert(Context {
            state: self.state.clone(),
            client,
            route: route.clone(),
            first: policy.index,
            more: Vec::new(),
        });
        match outcome {
            Outcome::Decided(decision) if decision.allowed => {
                let headers = headers(policy, &decision);
                Limited::passed(self.inner.call(req), Some(route), Some(headers))
            }
            Outcome::Decided(decision) => Limited::refused(
                Refusal::TooMany(limiter.clone(), policy.index, decision),
                route,
            ),
            Outcome::Unavailable if limiter.fail_closed() => {
                Limited::refused(Refusal::Unavailable, route)
            }
            Outcome::Unavailable => Limited::passed(self.inner.call(req), Some(route), None),
        }
    }
}

/// Why a request is refused without reaching the route.
pub enum Refusal {
    /// The policy (by index) is used up.
    TooMany(Arc<RateLimiter>, usize, Decision),
    /// The backend cannot answer and the limiter fails closed.
    Unavailable,
}

pin_project_lite::pin_project! {
    /// A request under the limiter: passed on (with the headers to add), answered at once, or
    /// waiting for the token verifier or the backend.
    #[project = LimitedProj]
    pub enum Limited<F> {
        Passed {
            #[pin]
            future: F,
            route: Option<MatchedPath>,
            headers: Option<[HeaderValue; 2]>,
        },
        Refused { refusal: Option<Refusal>, route: Option<MatchedPath> },
        Boxed { future: Pin<Box<dyn Future<Output = Response> + Send>> },
    }
}

impl<F> Limited<F> {
    fn passed(future: F, route: Option<MatchedPath>, headers: Option<[HeaderValue; 2]>) -> Self {
        Limited::Passed {
            future,
            route,
            headers,
        }
    }

    fn refused(refusal: Refusal, route: MatchedPath) -> Self {
        Limited::Refused {
            refusal: Some(refusal),
            route: Some(route),
        }
    }

    fn boxed(future: Pin<Box<dyn Future<Output = Response> + Send>>) -> Self {
        Limited::Boxed { future }
    }
}

impl<F> Future for Limited<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match self.project() {
            LimitedProj::Passed {
                future,
                route,
                headers,
            } => {
                let Ok(mut response) = ready!(future.poll(cx));
                if let Some([policy, remaining]) = headers.take() {
                    let map = response.headers_mut();
                    map.reserve(8);
                    map.append(RATELIMIT_POLICY, policy);
                    map.append(RATELIMIT, remaining);
                }
                if let Some(route) = route.take() {
                    request_id::set_route(route);
                }
                Poll::Ready(Ok(response))
            }
            LimitedProj::Refused { refusal, route } => {
                // Made when polled, inside the request's scope, so the problem quotes its id.
                let response = match refusal.take() {
                    Some(Refusal::TooMany(limiter, index, decision)) => {
                        match limiter.policies().all().get(index) {
                            Some(policy) => too_many(policy, &decision),
                            None => unavailable(),
                        }
                    }
                    Some(Refusal::Unavailable) | None => unavailable(),
                };
                if let Some(route) = route.take() {
                    request_id::set_route(route);
                }
                Poll::Ready(Ok(response))
            }
            LimitedProj::Boxed { future } => future.as_mut().poll(cx).map(Ok),
        }
    }
}

/// The key when it is known without verifying a token: no principal needed, one already
/// verified, or no bearer token at all (the client IP).
fn key_now(
    req: &Request,
    policy: &Policy,
    client: Option<IpAddr>,
    route: &str,
    token_header: &str,
) -> Option<String> {
    let principal = req.extensions().get::<Arc<Principal>>().cloned();
    let has_token = request_token(req.headers(), token_header).is_ok();
    if policy.key.needs_principal() && principal.is_none() && has_token {
        return None;
    }
    Some(key_of(
        policy,
        principal.filter(|_| policy.key.needs_principal()),
        client,
        route,
    ))
}

/// The slow path: verify the token if the key needs it, then ask the backend.
async fn limit<S>(state: AppState, route: MatchedPath, mut req: Request, inner: S) -> Response
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    let limiter = state.limiter.clone();
    let Some(policy) = limiter.policies().for_route(req.method(), route.as_str()) else {
        return inner
            .oneshot(req)
            .await
            .unwrap_or_else(|never| match never {});
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client = ip::client_ip(peer, req.headers(), limiter.trusted_proxies());
    let key = key_for(&state, &mut req, policy, client, route.as_str()).await;
    req.extensions_mut().insert(Context {
        state: state.clone(),
        client,
        route: route.clone(),
        first: policy.index,
        more: Vec::new(),
    });
    let run = |req| async move {
        inner
            .oneshot(req)
            .await
            .unwrap_or_else(|never| match never {})
    };
    let response = enforce(&limiter, policy, &key, req, run).await;
    request_id::set_route(route);
    response
}

/// Puts one route under the `sensitive` policy as well as the one its path falls under: for
/// routes that move money. On a route of an app's own router:
/// `post(pay).route_layer(axum::middleware::from_fn(rate_limit::money_moving))`.
pub async fn money_moving(req: Request, next: Next) -> Response {
    apply_named(SENSITIVE, req, next).await
}

/// Puts one route under the named policy as well:
/// `.route_layer(axum::middleware::from_fn_with_state("uploads", rate_limit::named_policy))`.
/// A name no policy has, or a router without the limiter, leaves the route as it was.
pub async fn named_policy(State(name): State<&'static str>, req: Request, next: Next) -> Response {
    apply_named(name, req, next).await
}

async fn apply_named(name: &str, mut req: Request, next: Next) -> Response {
    let Some(mut context) = req.extensions().get::<Context>().cloned() else {
        return next.run(req).await;
    };
    let limiter = context.state.limiter.clone();
    let Some(policy) = limiter.policies().by_name(name) else {
        return next.run(req).await;
    };
    if context.applied(policy.index) {
        return next.run(req).await;
    }
    let state = context.state.clone();
    let key = key_for(
        &state,
        &mut req,
        policy,
        context.client,
        context.route.as_str(),
    )
    .await;
    context.more.push(policy.index);
    req.extensions_mut().insert(context);
    enforce(&limiter, policy, &key, req, |req| next.run(req)).await
}

async fn enforce<Run, Fut>(
    limiter: &RateLimiter,
    policy: &Policy,
    key: &str,
    req: Request,
    run: Run,
) -> Response
where
    Run: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    match limiter.check(policy, key).await {
        Outcome::Decided(decision) if decision.allowed => {
            let mut response = run(req).await;
            add_headers(response.headers_mut(), policy, &decision);
            response
        }
        Outcome::Decided(decision) => too_many(policy, &decision),
        Outcome::Unavailable if limiter.fail_closed() => unavailable(),
        Outcome::Unavailable => run(req).await,
    }
}

/// A request to the app through the gateway, under `policy`: keyed like a route's (`route`, the
/// gateway rule, matters only to a per-route policy), with the caller already verified (or none). `Ok` with the headers to add
/// to the answer; `Err` with the refusal.
pub(crate) async fn admit(
    limiter: &RateLimiter,
    policy: &Policy,
    principal: Option<&Arc<Principal>>,
    client: Option<IpAddr>,
    route: &str,
) -> Result<Option<[HeaderValue; 2]>, Response> {
    let principal = principal.filter(|_| policy.key.needs_principal()).cloned();
    let key = key_of(policy, principal, client, route);
    match limiter.check(policy, &key).await {
        Outcome::Decided(decision) if decision.allowed => Ok(Some(headers(policy, &decision))),
        Outcome::Decided(decision) => Err(too_many(policy, &decision)),
        Outcome::Unavailable if limiter.fail_closed() => Err(unavailable()),
        Outcome::Unavailable => Ok(None),
    }
}

/// Adds the `RateLimit-Policy` and `RateLimit` fields [`admit`] returned.
pub(crate) fn add_admitted(map: &mut HeaderMap, [policy, remaining]: [HeaderValue; 2]) {
    map.append(RATELIMIT_POLICY, policy);
    map.append(RATELIMIT, remaining);
}

async fn key_for(
    state: &AppState,
    req: &mut Request,
    policy: &Policy,
    client: Option<IpAddr>,
    route: &str,
) -> String {
    let principal = if policy.key.needs_principal() {
        principal(state, req).await
    } else {
        None
    };
    key_of(policy, principal, client, route)
}

fn key_of(
    policy: &Policy,
    principal: Option<Arc<Principal>>,
    client: Option<IpAddr>,
    route: &str,
) -> String {
    let key = match (policy.key, principal) {
        (KeyKind::Tenant, Some(p)) => match &p.tenant_id {
            Some(tenant) => format!("tenant:{tenant}"),
            None => format!("user:{}", p.user_id),
        },
        (KeyKind::User, Some(p)) => format!("user:{}", p.user_id),
        _ => client.map_or_else(ip::unknown_key, ip::key),
    };
    if policy.per_route {
        format!("{route}|{key}")
    } else {
        key
    }
}

/// The verified caller, if the request carries a valid bearer token. A refusal is not counted
/// here: the handler that needs the caller refuses and counts it.
async fn principal(state: &AppState, req: &mut Request) -> Option<Arc<Principal>> {
    if let Some(principal) = req.extensions().get::<Arc<Principal>>() {
        return Some(principal.clone());
    }
    let token = request_token(req.headers(), &state.settings.auth.token_header).ok()?;
    let principal = state.verifier.identify(token).await?;
    req.extensions_mut().insert(principal.clone());
    Some(principal)
}

/// `RateLimit-Policy` and `RateLimit` for `decision` under `policy`.
fn headers(policy: &Policy, decision: &Decision) -> [HeaderValue; 2] {
    // `"<policy>";r=<remaining>;t=<reset>`, written without the formatting machinery: this runs on
    // every limited request.
    let mut numbers = itoa::Buffer::new();
    let mut value = Vec::with_capacity(policy.name.len() + 32);
    value.push(b'"');
    value.extend_from_slice(policy.name.as_bytes());
    value.extend_from_slice(b"\";r=");
    value.extend_from_slice(numbers.format(decision.remaining).as_bytes());
    value.extend_from_slice(b";t=");
    value.extend_from_slice(numbers.format(decision.reset_secs()).as_bytes());
    let remaining = HeaderValue::from_maybe_shared(axum::body::Bytes::from(value))
        .unwrap_or_else(|_| HeaderValue::from_static(""));
    [policy.header.clone(), remaining]
}

fn add_headers(map: &mut HeaderMap, policy: &Policy, decision: &Decision) {
    let [policy, remaining] = headers(policy, decision);
    map.append(RATELIMIT_POLICY, policy);
    map.append(RATELIMIT, remaining);
}

fn too_many(policy: &Policy, decision: &Decision) -> Response {
    let retry_after = decision.retry_after_secs();
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "Too many requests",
        format!(
            "The {} rate limit ({}) is used up; retry in {retry_after} s.",
            policy.name,
            policy.describe()
        ),
    )
    .into_response();
    let headers = response.headers_mut();
    add_headers(headers, policy, decision);
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

fn unavailable() -> Response {
    let mut response = ApiError::unavailable(
        "rate-limit-unavailable",
        "Rate limiting unavailable",
        "Requests cannot be checked against the rate limits right now; try again shortly.",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
