use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::Admin;
use crate::http::extract::Query;
use crate::http::problem::ApiError;
use crate::http::state::AppState;

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    limit: Option<i64>,
    target: Option<String>,
}

pub async fn list(
    _admin: Admin,
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let rows = state
        .db
        .audit_rows(q.target.as_deref(), q.limit.unwrap_or(50).clamp(1, 1000))
        .await?;
    Ok(Json(
        serde_json::to_value(rows).map_err(|_| ApiError::internal())?,
    ))
}
