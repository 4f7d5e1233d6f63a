//! The caller's own routes: `GET /v1/me` and the forward-auth check.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::Query;
use super::openapi::values;
use super::problem::ApiError;
use super::state::AppState;
use crate::auth::Principal;

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The token's `sub`.
    pub user_id: String,
    /// The tenant claim (`AUTH_TENANT_CLAIM`, `org_id` by default).
    #[schema(required = true)]
    pub tenant_id: Option<String>,
    /// `user`, and `admin` for the users in `ADMIN_USER_IDS`.
    pub roles: Vec<String>,
    /// When Keel first saw this user.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// `503` for the caller's own routes.
const USER_UNAVAILABLE: &str = "`auth-unavailable`: the issuer's keys have never been fetched, \
    so no token can be verified yet; `database-unavailable`; or `timeout`.";
const NO_TOKEN: &str = "No bearer token, or one that does not verify.";

#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "Users",
    operation_id = "getMe",
    summary = "The caller",
    description = "The verified caller. The user row is created on first sight (safe under \
        concurrent first requests).",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller.", body = Me),
        (status = 401, description = NO_TOKEN),
        (status = 503, description = USER_UNAVAILABLE),
    )
)]
pub async fn me(State(state): State<AppState>, principal: Principal) -> Result<Json<Me>, ApiError> {
    let row = state.users.touch(&principal).await?;
    Ok(Json(Me {
        user_id: principal.user_id,
        tenant_id: principal.tenant_id,
        roles: principal.roles,
        created_at: row.created_at,
    }))
}

/// `GET /v1/me/export`: every stored datum about the caller.
#[utoipa::path(
    get,
    path = "/v1/me/export",
    tag = "Users",
    operation_id = "exportMe",
    summary = "Everything stored about the caller",
    description = "The user row, entitlements, subscriptions, manual grants and revocations, \
        billing events with their raw payloads opened (while retained), provider links, audit \
        rows, jobs that name the caller, and their stored files with signed download URLs.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The export.", body = Object),
        (status = 401, description = NO_TOKEN),
        (status = 503, description = USER_UNAVAILABLE),
    )
)]
pub async fn export(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let origin = super::storage::request_origin(&headers);
    Ok(Json(
        crate::privacy::export_linked(&state.services, &principal.user_id, origin.as_deref())
            .await?,
    ))
}

// The answer to `DELETE /v1/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Scheduled {
    #[schema(schema_with = values::scheduled)]
    status: &'static str,
    job_id: i64,
}

/// `DELETE /v1/me`: 202; a job erases the caller's data.
#[utoipa::path(
    delete,
    path = "/v1/me",
    tag = "Users",
    operation_id = "deleteMe",
    summary = "Erase the caller's data",
    description = "Marks the caller for erasure and enqueues the `privacy.erase` job, which \
        deletes every row about them and every object they stored; audit rows stay under a keyed pseudonym (`h1:…`), not the \
        id.",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Scheduled.", body = inline(Scheduled)),
        (status = 401, description = NO_TOKEN),
        (
            status = 503,
            description = "`enqueue-disabled`: the `enqueue` kill switch is off; or the database \
                is unavailable."
        ),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<(StatusCode, Json<Scheduled>), ApiError> {
    let job = crate::privacy::request_erasure(&state.services, &principal.user_id).await?;
    let scheduled = Scheduled {
        status: "scheduled",
        job_id: job.id,
    };
    Ok((StatusCode::ACCEPTED, Json(scheduled)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckQuery {
    /// An entitlement that must be active (takes precedence over the header).
    entitlement: Option<String>,
}

const REQUIRED_ENTITLEMENT: &str = "x-required-entitlement";

/// Forward auth for reverse proxies (nginx `auth_request`, Traefik ForwardAuth, Caddy
/// `forward_auth`): 200 with the caller in `x-user-id`, `x-tenant-id` and `x-entitlements`; 401
/// for a bad or missing token; 403 when a required entitlement is not active.
#[utoipa::path(
    get,
    path = "/v1/auth/check",
    tag = "Users",
    operation_id = "authCheck",
    summary = "Forward authentication",
    description = "For reverse proxies: nginx `auth_request`, Traefik ForwardAuth, Caddy \
        `forward_auth`. Answers 200 with the caller in headers, 401 for a bad or missing token, \
        403 when the required entitlement is not active.",
    security(("bearer" = [])),
    params(
        CheckQuery,
        (
            "x-required-entitlement" = Option<String>,
            Header,
            description = "An entitlement that must be active, when the query does not name one."
        ),
    ),
    responses(
        (
            status = 200,
            description = "The caller may pass. No body.",
            headers(
                ("x-user-id" = String, description = "The user id (the token's `sub`)."),
                (
                    "x-tenant-id" = String,
                    description = "The tenant id; empty when the token names none."
                ),
                ("x-entitlements" = String, description = "The active entitlements, comma-separated."),
            )
        ),
        (status = 400, description = "The query string cannot be read."),
        (status = 401, description = NO_TOKEN),
        (
            status = 403,
            description = "`entitlement-required`: the required entitlement is not active; the \
                detail names it."
        ),
        (status = 503, description = USER_UNAVAILABLE),
    )
)]
pub async fn check(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<CheckQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let required = query.entitlement.filter(|n| !n.is_empty()).or_else(|| {
        headers
            .get(REQUIRED_ENTITLEMENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    let active = active_entitlements(&state, &principal).await?;
    if let Some(name) = required.filter(|n| !n.is_empty()) {
        if !active.contains(&name) {
            return Err(entitlement_required(&name));
        }
    }
    let mut response = StatusCode::OK.into_response();
    let out = response.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            out.insert(HeaderName::from_static(name), value);
        }
    };
    set("x-user-id", &principal.user_id);
    set("x-tenant-id", principal.tenant_id.as_deref().unwrap_or(""));
    set("x-entitlements", &active.join(","));
    Ok(response)
}

/// The entitlements active for the caller now.
async fn active_entitlements(
    state: &AppState,
    principal: &Principal,
) -> Result<Vec<String>, ApiError> {
    Ok(state.billing.active(&principal.user_id).await?)
}

pub fn entitlement_required(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "entitlement-required",
        "Entitlement required",
        format!("This needs the {name} entitlement, which is not active."),
    )
}
