use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::Admin;
use crate::http::extract;
use crate::http::problem::ApiError;
use crate::http::state::AppState;

pub async fn list(_admin: Admin, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "flags": state.flags.list().await? })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetFlag {
    enabled: bool,
}

pub async fn set(
    admin: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
    extract::Json(body): extract::Json<SetFlag>,
) -> Result<Json<Value>, ApiError> {
    state.flags.set(&name, body.enabled, &admin.actor).await?;
    Ok(Json(json!({ "name": name, "enabled": body.enabled })))
}
