use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::Admin;
use crate::http::problem::ApiError;
use crate::http::state::AppState;
use crate::jobs::is_valid_name;
use crate::ops::queues;

pub async fn list(_admin: Admin, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let stats = queues::stats(&state).await?;
    Ok(Json(json!({ "queues": stats })))
}

fn queue_name(name: &str) -> Result<(), ApiError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::malformed(
            "queue names are 1 to 100 characters of A-Z a-z 0-9 . _ : -",
        ))
    }
}

pub async fn pause(
    admin: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    queue_name(&name)?;
    state.queue.set_paused(&name, true, &admin.actor).await?;
    Ok(Json(json!({ "queue": name, "paused": true })))
}

pub async fn resume(
    admin: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    queue_name(&name)?;
    state.queue.set_paused(&name, false, &admin.actor).await?;
    Ok(Json(json!({ "queue": name, "paused": false })))
}

pub async fn drain(
    admin: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    queue_name(&name)?;
    let cancelled = state.queue.drain(&name, &admin.actor).await?;
    Ok(Json(json!({ "queue": name, "cancelled": cancelled })))
}
