use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::Admin;
use crate::http::extract::{self, Query};
use crate::http::problem::{ApiError, FieldError};
use crate::http::state::AppState;
use crate::jobs::{JobFilter, JobRow, JobSpec, JobState};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    kind: Option<String>,
    queue: Option<String>,
    limit: Option<i64>,
}

/// A job as operators see it (the same fields as `keel queue list --json`).
pub fn job_json(job: &JobRow) -> Value {
    json!({
        "id": job.id,
        "queue": job.queue,
        "kind": job.kind,
        "state": job.state,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "unique_key": job.unique_key,
        "run_at": job.run_at,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "last_error": job.last_error,
    })
}

pub async fn list(
    _admin: Admin,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let states = match q.state.as_deref() {
        None | Some("") => Vec::new(),
        Some(s) => vec![JobState::parse(s).ok_or_else(|| {
            ApiError::validation(vec![FieldError {
                field: "state".into(),
                message: "must be scheduled, available, running, retryable, completed, discarded or cancelled".into(),
            }])
        })?],
    };
    let filter = JobFilter {
        id: None,
        queue: q.queue,
        kind: q.kind,
        states,
        limit: q.limit.unwrap_or(50).clamp(1, 1000),
    };
    let jobs = state.db.list_jobs(&filter).await?;
    Ok(Json(Value::Array(jobs.iter().map(job_json).collect())))
}

pub async fn enqueue(
    admin: Admin,
    State(state): State<AppState>,
    extract::Json(spec): extract::Json<JobSpec>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let enqueued = state.queue.enqueue_audited(&[spec], &admin.actor).await?;
    let first = enqueued.first().copied().ok_or_else(ApiError::internal)?;
    let status = if first.deduplicated {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(json!({ "id": first.id, "deduplicated": first.deduplicated })),
    ))
}

fn one(id: i64) -> JobFilter {
    JobFilter {
        id: Some(id),
        limit: 1,
        ..JobFilter::default()
    }
}

async fn after_change(
    state: &AppState,
    id: i64,
    changed: Vec<i64>,
    action: &str,
) -> Result<Json<Value>, ApiError> {
    if changed.is_empty() {
        let exists = !state.db.list_jobs(&one(id)).await?.is_empty();
        return Err(if exists {
            ApiError::new(
                StatusCode::CONFLICT,
                "job-state-conflict",
                "Conflict",
                format!("Job {id} is not in a state that allows {action}."),
            )
        } else {
            crate::jobs::JobError::NotFound(id).into()
        });
    }
    let job = state.db.list_jobs(&one(id)).await?;
    Ok(Json(job.first().map(job_json).unwrap_or(Value::Null)))
}

pub async fn retry(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let changed = state.queue.retry(&one(id), &admin.actor).await?;
    after_change(&state, id, changed, "retry").await
}

pub async fn discard(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let changed = state.queue.discard(&one(id), &admin.actor).await?;
    after_change(&state, id, changed, "discard").await
}
