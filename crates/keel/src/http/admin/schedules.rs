use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::Admin;
use crate::http::problem::ApiError;
use crate::http::state::AppState;

pub async fn list(_admin: Admin, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let report = crate::ops::queues::report(&state).await?;
    Ok(Json(json!({ "schedules": report.schedules })))
}

pub async fn trigger(
    admin: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let fired = state.scheduler.trigger(&name, None, &admin.actor).await?;
    Ok((StatusCode::ACCEPTED, Json(json!(fired))))
}
