//! The caller's own routes: `GET /v1/me` and the forward-auth check.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::extract::Query;
use super::problem::ApiError;
use super::state::AppState;
use crate::auth::Principal;

#[derive(Debug, Serialize)]
pub struct Me {
    pub user_id: String,
    pub tenant_id: Option<String>,
    pub roles: Vec<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

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
pub async fn export(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(
        crate::privacy::export(&state.services, &principal.user_id).await?,
    ))
}

/// `DELETE /v1/me`: 202; a job erases the caller's data.
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let job = crate::privacy::request_erasure(&state.services, &principal.user_id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "status": "scheduled", "job_id": job.id })),
    ))
}

#[derive(Debug, Deserialize)]
pub struct CheckQuery {
    entitlement: Option<String>,
}

const REQUIRED_ENTITLEMENT: &str = "x-required-entitlement";

/// Forward auth for reverse proxies (nginx `auth_request`, Traefik ForwardAuth, Caddy
/// `forward_auth`): 200 with the caller in `x-user-id`, `x-tenant-id` and `x-entitlements`; 401
/// for a bad or missing token; 403 when a required entitlement is not active.
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
