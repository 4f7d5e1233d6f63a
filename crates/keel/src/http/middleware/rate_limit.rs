//! Rate limiting at the edge, applied with `Router::route_layer` so the matched route template
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

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::auth::Principal;
use crate::http::auth::bearer_token;
use crate::http::problem::ApiError;
use crate::http::state::AppState;
use crate::ratelimit::policy::SENSITIVE;
use crate::ratelimit::{ip, Decision, KeyKind, Outcome, Policy, RateLimiter};

pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// The layer's state: the process's limiter, and the app state for verifying tokens.
#[derive(Debug, Clone)]
pub struct RateLimit {
    limiter: Arc<RateLimiter>,
    state: AppState,
}

impl RateLimit {
    pub fn new(state: &AppState) -> Self {
        let limiter = RateLimiter::from_settings(&state.settings, state.clock.clone());
        RateLimit {
            limiter: Arc::new(limiter),
            state: state.clone(),
        }
    }

    pub fn limiter(&self) -> &Arc<RateLimiter> {
        &self.limiter
    }
}

/// Limits every route of `routes` declared so far, and makes the limiter reachable (an
/// `Extension<Arc<RateLimiter>>`) for `/metrics`.
pub fn install(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    let rate_limit = RateLimit::new(state);
    let limiter = rate_limit.limiter.clone();
    routes
        .route_layer(axum::middleware::from_fn_with_state(rate_limit, layer))
        .layer(axum::Extension(limiter))
}

/// What the outer layer learned, for [`named_policy`] layers on single routes.
#[derive(Debug, Clone)]
struct Context {
    rate_limit: RateLimit,
    client: Option<IpAddr>,
    route: String,
    applied: Vec<usize>,
}

pub async fn layer(State(rate_limit): State<RateLimit>, mut req: Request, next: Next) -> Response {
    let Some(route) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
    else {
        return next.run(req).await;
    };
    let limiter = rate_limit.limiter.clone();
    let Some(policy) = limiter.policies().for_route(req.method(), &route) else {
        return next.run(req).await;
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client = ip::client_ip(peer, req.headers(), limiter.trusted_proxies());
    let key = key_for(&rate_limit.state, &mut req, policy, client, &route).await;
    req.extensions_mut().insert(Context {
        rate_limit,
        client,
        route,
        applied: vec![policy.index],
    });
    enforce(&limiter, policy, &key, req, next).await
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
    let limiter = context.rate_limit.limiter.clone();
    let Some(policy) = limiter.policies().by_name(name) else {
        return next.run(req).await;
    };
    if context.applied.contains(&policy.index) {
        return next.run(req).await;
    }
    let state = &context.rate_limit.state;
    let key = key_for(state, &mut req, policy, context.client, &context.route).await;
    context.applied.push(policy.index);
    req.extensions_mut().insert(context);
    enforce(&limiter, policy, &key, req, next).await
}

async fn enforce(
    limiter: &RateLimiter,
    policy: &Policy,
    key: &str,
    req: Request,
    next: Next,
) -> Response {
    match limiter.check(policy, key).await {
        Outcome::Decided(decision) if decision.allowed => {
            let mut response = next.run(req).await;
            add_headers(response.headers_mut(), policy, &decision);
            response
        }
        Outcome::Decided(decision) => too_many(policy, &decision),
        Outcome::Unavailable if limiter.fail_closed() => unavailable(),
        Outcome::Unavailable => next.run(req).await,
    }
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
    let token = bearer_token(req.headers()).ok()?;
    let principal = state.verifier.identify(token).await?;
    req.extensions_mut().insert(principal.clone());
    Some(principal)
}

fn add_headers(headers: &mut HeaderMap, policy: &Policy, decision: &Decision) {
    headers.append(RATELIMIT_POLICY, policy.header.clone());
    let value = format!(
        "\"{}\";r={};t={}",
        policy.name,
        decision.remaining,
        decision.reset_secs()
    );
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.append(RATELIMIT, value);
    }
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
