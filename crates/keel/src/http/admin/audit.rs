use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use super::Admin;
use crate::http::extract::Query;
use crate::http::problem::ApiError;
use crate::http::state::AppState;
use crate::store::audit::AuditRow;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// At most this many (clamped to 1 … 1000).
    #[param(default = 50, minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Only rows about this target (e.g. `flag:workers`, `queue:default`).
    target: Option<String>,
}

#[utoipa::path(
    get,
    path = "/admin/api/audit",
    tag = "Audit",
    operation_id = "listAudit",
    summary = "The audit trail",
    description = "Audit rows newest first: every admin action, from the API or the CLI.",
    security(("adminToken" = []), ("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "The rows, newest first.", body = Vec<AuditRow>),
        (status = 400, description = "A parameter cannot be read (e.g. `limit` is not an integer)."),
        (status = 401, description = super::NO_CREDENTIALS),
        (status = 403, description = super::NOT_ADMIN),
        (status = 503, description = super::UNAVAILABLE),
    )
)]
pub async fn list(
    _admin: Admin,
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let rows = state
        .audit_log(q.target.as_deref(), q.limit.unwrap_or(50).clamp(1, 1000))
        .await?;
    Ok(Json(
        serde_json::to_value(rows).map_err(|_| ApiError::internal())?,
    ))
}
