//! User lookup and manual entitlement grants and revocations.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use super::Admin;
use crate::billing::model::valid_id;
use crate::billing::Override;
use crate::http::entitlements::Entitlements;
use crate::http::extract::{self, Query};
use crate::http::problem::{ApiError, FieldError};
use crate::http::state::AppState;

#[utoipa::path(
    get,
    path = "/admin/api/users/{id}",
    tag = "Billing",
    security(("adminToken" = []), ("bearer" = [])),
    operation_id = "getUser",
    summary = "Look a user up",
    description = "The user row (null when only a purchase names the id) and the entitlements.",
    params(("id" = String, Path, description = "The user id.")),
    responses(
        (status = 200, description = "The user.", body = Object),
        (status = 401, description = "Neither `ADMIN_TOKEN` nor a user token that verifies."),
        (status = 403, description = "`admin-required`: the user is not in `ADMIN_USER_IDS`."),
        (status = 503, description = "`database-unavailable` or `timeout`."),
        (status = 404, description = "No user row and no purchase with this id."),
    )
)]
pub async fn show(
    _admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let user = state.users.get(&id).await?;
    let entitlements = state.billing.entitlements(&id).await?;
    if user.is_none() && entitlements.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            "No user with this id, and no purchase names it.",
        ));
    }
    Ok(Json(
        json!({ "id": id, "user": user, "entitlements": entitlements }),
    ))
}

#[utoipa::path(
    get,
    path = "/admin/api/users/{id}/entitlements",
    tag = "Billing",
    security(("adminToken" = []), ("bearer" = [])),
    operation_id = "getUserEntitlements",
    summary = "A user's entitlements",
    params(("id" = String, Path, description = "The user id.")),
    responses(
        (status = 200, description = "The entitlements.", body = Entitlements),
        (status = 401, description = "Neither `ADMIN_TOKEN` nor a user token that verifies."),
        (status = 403, description = "`admin-required`: the user is not in `ADMIN_USER_IDS`."),
        (status = 503, description = "`database-unavailable` or `timeout`."),
    )
)]
pub async fn entitlements(
    _admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let entitlements = state.billing.entitlements(&id).await?;
    Ok(Json(json!({ "entitlements": entitlements })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    #[schema(min_length = 1, max_length = 255)]
    entitlement: String,
    expires_at: Option<DateTime<Utc>>,
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
}

pub(in crate::http) fn check(id: &str, entitlement: &str, reason: &str) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    let mut bad = |field: &str, message: &str| {
        errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        })
    };
    if !valid_id(id) {
        bad(
            "id",
            "must be 1 to 255 characters without control characters",
        );
    }
    if !valid_id(entitlement) {
        bad(
            "entitlement",
            "must be 1 to 255 characters without control characters",
        );
    }
    if reason.trim().is_empty() || reason.chars().count() > 500 {
        bad("reason", "is required, at most 500 characters");
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

#[utoipa::path(
    post,
    path = "/admin/api/users/{id}/grants",
    tag = "Billing",
    security(("adminToken" = []), ("bearer" = [])),
    operation_id = "grantEntitlement",
    summary = "Grant an entitlement",
    description = "A manual grant (source `manual`) until `expires_at` or forever; audited.",
    params(("id" = String, Path, description = "The user id.")),
    request_body = Grant,
    responses(
        (status = 200, description = "The entitlements now.", body = Entitlements),
        (status = 401, description = "Neither `ADMIN_TOKEN` nor a user token that verifies."),
        (status = 403, description = "`admin-required`: the user is not in `ADMIN_USER_IDS`."),
        (status = 503, description = "`database-unavailable` or `timeout`."),
        (status = 400, description = "The body is not JSON."),
        (status = 413, description = "The body is larger than `BODY_LIMIT_BYTES`."),
        (status = 415, description = "The body is not `application/json`."),
        (status = 422, description = "A field is missing or invalid; `errors` names it."),
    )
)]
pub async fn grant(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    extract::Json(body): extract::Json<Grant>,
) -> Result<Json<Value>, ApiError> {
    check(&id, &body.entitlement, &body.reason)?;
    let o = Override {
        entitlement: body.entitlement,
        revoked: false,
        expires_at: body.expires_at,
        reason: body.reason,
    };
    state.billing.set_override(&id, o, &admin.actor).await?;
    let entitlements = state.billing.entitlements(&id).await?;
    Ok(Json(json!({ "entitlements": entitlements })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Revoke {
    /// When the revocation ends (RFC 3339).
    until: Option<DateTime<Utc>>,
    /// Why, for the audit trail.
    reason: Option<String>,
}

/// Revokes the entitlement whatever grants it (a purchase or a manual grant), until `?until=`
/// (RFC 3339) or until the next manual grant.
#[utoipa::path(
    delete,
    path = "/admin/api/users/{id}/grants/{entitlement}",
    tag = "Billing",
    security(("adminToken" = []), ("bearer" = [])),
    operation_id = "revokeEntitlement",
    summary = "Revoke an entitlement",
    description = "Revokes the entitlement whatever grants it (a purchase or a manual grant) \
        until `until`, or until the next manual grant; audited.",
    params(
        ("id" = String, Path, description = "The user id."),
        ("entitlement" = String, Path, description = "The entitlement."),
        Revoke,
    ),
    responses(
        (status = 200, description = "The entitlements now.", body = Entitlements),
        (status = 401, description = "Neither `ADMIN_TOKEN` nor a user token that verifies."),
        (status = 403, description = "`admin-required`: the user is not in `ADMIN_USER_IDS`."),
        (status = 503, description = "`database-unavailable` or `timeout`."),
        (status = 400, description = "`until` is not RFC 3339."),
        (status = 422, description = "The id, entitlement or reason is invalid."),
    )
)]
pub async fn revoke(
    admin: Admin,
    State(state): State<AppState>,
    Path((id, entitlement)): Path<(String, String)>,
    Query(query): Query<Revoke>,
) -> Result<Json<Value>, ApiError> {
    let reason = query
        .reason
        .unwrap_or_else(|| "revoked by an operator".into());
    check(&id, &entitlement, &reason)?;
    let o = Override {
        entitlement,
        revoked: true,
        expires_at: query.until,
        reason,
    };
    state.billing.set_override(&id, o, &admin.actor).await?;
    let entitlements = state.billing.entitlements(&id).await?;
    Ok(Json(json!({ "entitlements": entitlements })))
}
