//! The gateway's HTTP side: the router's fallback when `UPSTREAM_URL` is set, so Keel's own
//! routes win and every other request goes to the app. A request is admitted under its rule
//! (token, rate limit, tenant, entitlement, body size), given the caller's identity in headers
//! only Keel sets, and forwarded; the app's answer streams back as it comes. What goes wrong on
//! the way is Keel's problem: 502 when the app is down, 504 when it is slow, 408 when the client
//! is.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{header, request, HeaderValue, StatusCode, Version};
use axum::response::{IntoResponse, Response};

use super::auth::{authenticate, refusal, request_token, Tenant};
use super::me::entitlement_required;
use super::middleware::errors::OwnBody;
use super::middleware::{rate_limit, request_id};
use super::problem::ApiError;
use super::state::AppState;
use crate::auth::{Principal, Reason};
use crate::gateway::headers::{self, Forwarded, Identity};
use crate::gateway::signature::Signed;
use crate::gateway::{AuthMode, Failure, Gateway, Rule, Upload};

/// The fallback: the request goes to the app, or is answered by Keel when it may not.
pub async fn forward(State(state): State<AppState>, req: Request) -> Response {
    let Some(gateway) = state.gateway.clone() else {
        return ApiError::from_status(StatusCode::NOT_FOUND).into_response();
    };
    if let Some(problem) = ambiguous(req.uri().path()) {
        return ApiError::malformed(problem).into_response();
    }
    let started = Instant::now();
    let (rule, metrics) = gateway.route(req.method(), req.uri().path());
    request_id::set_gateway_rule(rule.label.clone());
    let response = match pass(&state, &gateway, rule, req).await {
        Ok(response) => response,
        Err(Refused::Keel(response)) => response,
        Err(Refused::Upstream(failure)) => {
            if let Some(kind) = failure.upstream_kind() {
                metrics.upstream_error(kind);
                tracing::warn!(
                    request_id = request_id::current().unwrap_or_default(),
                    rule = &*rule.label,
                    kind,
                    "the app did not answer"
                );
            }
            failure_response(failure, &gateway)
        }
    };
    metrics.answered(response.status(), started.elapsed().as_secs_f64());
    response
}

enum Refused {
    /// Keel's own answer: 401, 403, 413, 429…
    Keel(Response),
    Upstream(Failure),
}

impl From<ApiError> for Refused {
    fn from(problem: ApiError) -> Self {
        Refused::Keel(problem.into_response())
    }
}

async fn pass(
    state: &AppState,
    gateway: &Gateway,
    rule: &Rule,
    req: Request,
) -> Result<Response, Refused> {
    let (mut parts, body) = req.into_parts();
    if let Some(limit) = rule.body_limit {
        if declared_length(&parts.headers).is_some_and(|n| n > limit) {
            return Err(Refused::Keel(too_large(limit)));
        }
    }
    let principal = caller(state, rule, &parts).await?;
    let limiter = &state.limiter;
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client = crate::ratelimit::ip::client_ip(peer, &parts.headers, limiter.trusted_proxies());
    let policy = match &rule.rate_limit {
        Some(name) => limiter.policies().by_name(name),
        None => limiter
            .policies()
            .for_route(&parts.method, parts.uri.path()),
    };
    let limited = match policy {
        Some(policy) => rate_limit::admit(limiter, policy, principal.as_ref(), client, &rule.label)
            .await
            .map_err(Refused::Keel)?,
        None => None,
    };
    let identity = match &principal {
        Some(principal) => Some(identity(state, rule, principal, &mut parts).await?),
        None => None,
    };

    let upgrade = headers::is_upgrade(&parts.headers);
    let trusted_peer =
        peer.is_some_and(|ip| limiter.trusted_proxies().iter().any(|n| n.contains(ip)));
    let forwarded = Forwarded {
        client,
        https: trusted_peer
            && parts
                .headers
                .get(headers::X_FORWARDED_PROTO)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https")),
        host: parts.headers.get(header::HOST).cloned(),
    };
    headers::strip(&mut parts.headers, upgrade);
    parts.uri = gateway
        .uri(&parts.uri)
        .ok_or_else(|| ApiError::malformed("The path cannot be forwarded."))?;
    let request_id = request_id::current_value();
    if let Some(signer) = gateway.signer() {
        let empty = HeaderValue::from_static("");
        let signed = Signed {
            method: parts.method.as_str(),
            // As the app receives it: under the base path of UPSTREAM_URL.
            path_and_query: parts.uri.path_and_query().map_or("/", |pq| pq.as_str()),
            user_id: identity.as_ref().map_or(&b""[..], |i| i.user_id.as_bytes()),
            tenant_id: identity
                .as_ref()
                .and_then(|i| i.tenant_id.as_ref())
                .unwrap_or(&empty)
                .as_bytes(),
            entitlements: identity
                .as_ref()
                .map_or(&b""[..], |i| i.entitlements.as_bytes()),
            request_id: request_id.as_ref().unwrap_or(&empty).as_bytes(),
        };
        let signature = signer.sign(state.clock.now().timestamp(), &signed);
        parts.headers.insert(headers::X_KEEL_SIGNATURE, signature);
    }
    headers::set(&mut parts.headers, identity.as_ref(), request_id, forwarded);
    parts.headers.insert(header::HOST, gateway.host());
    parts.version = Version::HTTP_11;
    let client_upgrade = if upgrade {
        parts.extensions.remove::<hyper::upgrade::OnUpgrade>()
    } else {
        None
    };

    let (upload, progress) = Upload::new(body, rule.body_limit, gateway.timeout());
    let req = axum::http::Request::from_parts(parts, upload);
    let mut answer = gateway
        .send(req, progress)
        .await
        .map_err(Refused::Upstream)?;
    let switched = answer.status() == StatusCode::SWITCHING_PROTOCOLS;
    if switched {
        match client_upgrade {
            Some(client) => {
                crate::gateway::upstream::splice(client, hyper::upgrade::on(&mut answer))
            }
            None => return Err(Refused::Upstream(Failure::Broken)),
        }
    }
    headers::strip_response(answer.headers_mut(), switched);
    let mut response = answer.map(Body::new);
    if let Some(fields) = limited {
        rate_limit::add_admitted(response.headers_mut(), fields);
    }
    if response.status().is_client_error() || response.status().is_server_error() {
        // The app's own error answers reach the client as the app wrote them.
        response.extensions_mut().insert(OwnBody);
    }
    Ok(response)
}

/// The verified caller, as the rule requires: a token (401 without), an optional one (refused
/// only when sent and invalid), or none read at all.
async fn caller(
    state: &AppState,
    rule: &Rule,
    parts: &request::Parts,
) -> Result<Option<Arc<Principal>>, Refused> {
    match rule.auth {
        AuthMode::None => Ok(None),
        AuthMode::Required => authenticate(&parts.headers, state)
            .await
            .map(Some)
            .map_err(|reason| refusal(reason).into()),
        AuthMode::Optional => {
            match request_token(&parts.headers, &state.settings.auth.token_header) {
                Err(Reason::Missing) => Ok(None),
                _ => authenticate(&parts.headers, state)
                    .await
                    .map(Some)
                    .map_err(|reason| refusal(reason).into()),
            }
        }
    }
}

/// The identity passed to the app, once the rule's tenant and entitlement are satisfied.
async fn identity(
    state: &AppState,
    rule: &Rule,
    principal: &Arc<Principal>,
    parts: &mut request::Parts,
) -> Result<Identity, Refused> {
    let tenant = if rule.tenant {
        parts.extensions.insert(principal.clone());
        let tenant = Tenant::from_request_parts(parts, state).await?;
        Some(tenant.0)
    } else {
        None
    };
    let tenant = tenant.as_deref().or(principal.tenant_id.as_deref());
    let active = state
        .billing
        .active(&principal.user_id)
        .await
        .map_err(ApiError::from)?;
    if let Some(name) = &rule.entitlement {
        if !active.iter().any(|a| a == name) {
            return Err(entitlement_required(name).into());
        }
    }
    Identity::new(&principal.user_id, tenant, &active)
        .ok_or_else(|| refusal(Reason::Malformed).into())
}

fn declared_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn too_large(limit: u64) -> Response {
    let mut problem = ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE);
    problem.detail = format!("The request body is larger than {limit} bytes.");
    with_close(problem.into_response())
}

fn with_close(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Keel's answer when the app did not answer.
fn failure_response(failure: Failure, gateway: &Gateway) -> Response {
    let timeout_s = gateway.timeout().as_secs();
    match failure {
        Failure::Connect | Failure::Broken => {
            let mut problem = ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream-unavailable",
                "Upstream unavailable",
                "The app could not be reached; try again shortly.",
            );
            problem.retry_after = Some(1);
            problem.into_response()
        }
        Failure::Timeout => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream-timeout",
            "Upstream timeout",
            format!("The app did not answer within {timeout_s} s."),
        )
        .into_response(),
        Failure::ClientStalled => with_close(
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "client-timeout",
                "Request timeout",
                format!("The request body paused for more than {timeout_s} s."),
            )
            .into_response(),
        ),
        Failure::ClientAborted => with_close(
            ApiError::malformed("The request body ended before it was complete.").into_response(),
        ),
        Failure::TooLarge => ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE).into_response(),
    }
}

/// Why a path is refused rather than forwarded: one the app might read differently from the
/// rules (`.` and `..` segments, also percent-encoded; empty segments; encoded slashes and
/// backslashes). `None` for a plain path.
fn ambiguous(path: &str) -> Option<&'static str> {
    let Some(rest) = path.strip_prefix('/') else {
        return Some("The path must start with /.");
    };
    if path.contains("//") {
        return Some("The path has an empty segment (//).");
    }
    if path.contains('\\') || has_encoded(path, [b'2', b'f']) || has_encoded(path, [b'5', b'c']) {
        return Some("The path has an encoded slash or a backslash.");
    }
    if rest.split('/').any(is_dots) {
        return Some("The path has a . or .. segment.");
    }
    None
}

/// Whether `path` holds `%XY` with these two hex digits, in either case.
fn has_encoded(path: &str, [x, y]: [u8; 2]) -> bool {
    path.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == x && w[2].eq_ignore_ascii_case(&y))
}

/// `.` or `..`, spelled with dots or `%2e`.
fn is_dots(segment: &str) -> bool {
    let mut rest = segment.as_bytes();
    let mut dots = 0;
    while !rest.is_empty() {
        if rest[0] == b'.' {
            rest = &rest[1..];
        } else if rest.len() >= 3
            && rest[0] == b'%'
            && rest[1] == b'2'
            && rest[2].eq_ignore_ascii_case(&b'e')
        {
            rest = &rest[3..];
        } else {
            return false;
        }
        dots += 1;
    }
    (1..=2).contains(&dots)
}

#[cfg(test)]
mod tests {
    use super::ambiguous;

    #[test]
    fn paths_the_app_might_read_differently_are_refused() {
        for path in [
            "/api/../admin",
            "/api/./x",
            "/api/%2e%2e/admin",
            "/api/.%2E/admin",
            "/api//x",
            "/api/a%2fb",
            "/api/a%2Fb",
            "/api/a%5cb",
            "/api/a\\b",
            "/..",
            "*",
        ] {
            assert!(ambiguous(path).is_some(), "{path}");
        }
        for path in [
            "/",
            "/api/x",
            "/api/x/",
            "/a/.well-known/x",
            "/a/...",
            "/a%20b",
            "/v1.2/x",
        ] {
            assert!(ambiguous(path).is_none(), "{path}");
        }
    }
}
