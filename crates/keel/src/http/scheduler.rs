//! `POST /v1/scheduler/{name}/trigger`: external cron (a platform scheduler, a CI job) fires a
//! schedule. Bearer `SCHEDULER_SECRET_KEY`; the route exists only when it is set.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use super::metrics::bearer_matches;
use super::problem::ApiError;
use super::state::AppState;

const IDEMPOTENCY_KEY: &str = "idempotency-key";

pub async fn trigger(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let authorized = state
        .settings
        .jobs
        .scheduler_secret_key
        .as_ref()
        .is_some_and(|secret| bearer_matches(&headers, secret.expose_secret()));
    if !authorized {
        return Err(ApiError::from_status(StatusCode::UNAUTHORIZED).with_www_authenticate("Bearer"));
    }
    let key = match headers.get(IDEMPOTENCY_KEY) {
        None => None,
        Some(value) => match value.to_str() {
            Ok(k) if !k.is_empty() && k.len() <= 200 => Some(k.to_string()),
            _ => {
                return Err(ApiError::malformed(
                    "Idempotency-Key must be 1 to 200 visible ASCII characters.",
                ))
            }
        },
    };
    let fired = state
        .scheduler
        .trigger(&name, key.as_deref(), "scheduler-trigger")
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!(fired))))
}
