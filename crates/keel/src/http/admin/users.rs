//! User lookup and manual entitlement grants and revocations.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::Admin;
use crate::billing::model::valid_id;
use crate::billing::Override;
use crate::http::extract::{self, Query};
use crate::http::problem::{ApiError, FieldError};
use crate::http::state::AppState;

pub async fn show(
    _admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let user = state.db.user(&id).await?;
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

pub async fn entitlements(
    _admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let entitlements = state.billing.entitlements(&id).await?;
    Ok(Json(json!({ "entitlements": entitlements })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    entitlement: String,
    expires_at: Option<DateTime<Utc>>,
    reason: String,
}

fn check(id: &str, entitlement: &str, reason: &str) -> Result<(), ApiError> {
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
    if reason.trim().is_empty() || reason.len() > 500 {
        bad("reason", "is required, at most 500 characters");
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

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

#[derive(Debug, Deserialize)]
pub struct Revoke {
    until: Option<DateTime<Utc>>,
    reason: Option<String>,
}

/// Revokes the entitlement whatever grants it (a purchase or a manual grant), until `?until=`
/// (RFC 3339) or until the next manual grant.
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
