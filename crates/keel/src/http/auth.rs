//! Bearer tokens at the edge: the `Principal` and `Tenant` extractors, so that who may call a
//! handler reads in its signature. Refusals are 401 problems naming the reason class (never the
//! token or its claims), counted and logged with the request id.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};

use super::middleware::request_id;
use super::problem::ApiError;
use super::state::AppState;
use crate::auth::{Principal, Reason, MAX_TOKEN_BYTES};
use crate::billing::Provider;

/// The bearer token of a request: exactly one `Authorization` header with the `Bearer` scheme
/// (matched case-insensitively, RFC 9110 §11.1) and a non-empty token.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, Reason> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Err(Reason::Missing),
        (Some(_), Some(_)) => return Err(Reason::Malformed),
        (Some(value), None) => value,
    };
    if value.len() > MAX_TOKEN_BYTES + 16 {
        return Err(Reason::TooLarge);
    }
    let value = value.to_str().map_err(|_| Reason::Malformed)?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let token = token.trim_matches(' ');
    // Another scheme, or `Bearer` with no token, is no bearer credential at all (RFC 6750 §3.1).
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(Reason::Missing);
    }
    if token.as_bytes().contains(&b' ') {
        return Err(Reason::Malformed);
    }
    Ok(token)
}

/// The token of a request from `source` (`AUTH_TOKEN_HEADER`): the bearer token of
/// `Authorization`, or the whole value of exactly one other header (such as `x-whop-user-token`;
/// a `Bearer ` prefix there is accepted).
pub fn request_token<'a>(headers: &'a HeaderMap, source: &str) -> Result<&'a str, Reason> {
    if source.eq_ignore_ascii_case(header::AUTHORIZATION.as_str()) {
        return bearer_token(headers);
    }
    let mut values = headers.get_all(source).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Err(Reason::Missing),
        (Some(_), Some(_)) => return Err(Reason::Malformed),
        (Some(value), None) => value,
    };
    if value.len() > MAX_TOKEN_BYTES + 16 {
        return Err(Reason::TooLarge);
    }
    let value = value
        .to_str()
        .map_err(|_| Reason::Malformed)?
        .trim_matches(' ');
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim_matches(' '),
        _ => value,
    };
    if token.is_empty() {
        return Err(Reason::Missing);
    }
    if token.as_bytes().contains(&b' ') {
        return Err(Reason::Malformed);
    }
    Ok(token)
}

/// The problem answered for `reason`: 401 with `www-authenticate: Bearer` (plus
/// `error="invalid_token"` when a token was sent, RFC 6750 §3.1), or 503 when no verifier can work.
pub fn refusal(reason: Reason) -> ApiError {
    match reason {
        Reason::Unavailable => ApiError::unavailable(
            "auth-unavailable",
            "Authentication unavailable",
            reason.message(),
        ),
        Reason::Missing => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            reason.message(),
        )
        .with_www_authenticate("Bearer"),
        _ => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid-token",
            "Invalid token",
            reason.message(),
        )
        .with_www_authenticate("Bearer error=\"invalid_token\""),
    }
}

/// Verifies the request's token, counting and logging a refusal.
pub async fn authenticate(headers: &HeaderMap, state: &AppState) -> Result<Arc<Principal>, Reason> {
    let result = match request_token(headers, &state.settings.auth.token_header) {
        Ok(token) => state.verifier.verify(token).await,
        Err(reason) => {
            state.verifier.stats().failure(reason);
            Err(reason)
        }
    };
    if let Ok(principal) = &result {
        request_id::set_user(&principal.user_id);
    }
    if let Err(reason) = result {
        tracing::info!(
            request_id = request_id::current().unwrap_or_default(),
            reason = reason.as_str(),
            "authentication refused"
        );
    }
    result
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(principal) = parts.extensions.get::<Arc<Principal>>() {
            request_id::set_user(&principal.user_id);
            return Ok(principal.as_ref().clone());
        }
        let principal = authenticate(&parts.headers, state).await.map_err(refusal)?;
        parts.extensions.insert(principal.clone());
        Ok(principal.as_ref().clone())
    }
}

/// The header a Whop app's request names its company in (the Whop company id, `biz_…`).
pub const WHOP_COMPANY_HEADER: &str = "x-whop-company-id";

/// The caller's tenant: the one its verified token names; or, for a Whop user token (which names
/// none), the company in `x-whop-company-id` once the caller is found to hold an active Whop
/// membership in it. 403 otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant(pub String);

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = Principal::from_request_parts(parts, state).await?;
        if let Some(tenant) = principal.tenant_id {
            return Ok(Tenant(tenant));
        }
        let company = principal
            .whop_member
            .then(|| parts.headers.get(WHOP_COMPANY_HEADER))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .filter(|c| crate::billing::model::valid_id(c));
        let Some(company) = company else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "tenant-required",
                "Tenant required",
                "This route needs a token that names a tenant.",
            ));
        };
        let member = state
            .billing
            .holds_in_tenant(Provider::Whop, &principal.user_id, company)
            .await
            .map_err(|_| {
                ApiError::unavailable(
                    "database-unavailable",
                    "Database unavailable",
                    "The membership could not be checked.",
                )
            })?;
        if !member {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "tenant-required",
                "Tenant required",
                "The caller holds no active Whop membership in this company.",
            ));
        }
        Ok(Tenant(company.to_string()))
    }
}
