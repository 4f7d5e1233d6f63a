use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use super::schemas::Job;
use super::Admin;
use crate::http::extract::{self, Query};
use crate::http::job_body::job_json;
use crate::http::problem::{ApiError, FieldError};
use crate::http::state::AppState;
use crate::jobs::{ArgMatch, Enqueued, JobFilter, JobSpec, JobState};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only jobs in this state.
    #[param(value_type = Option<JobState>)]
    state: Option<String>,
    /// Only jobs of this kind.
    kind: Option<String>,
    /// Only jobs of this queue.
    queue: Option<String>,
    /// Only jobs whose arguments hold this top-level key with this value, written `key=value`
    /// (`user_id=u_42`, `count=3`, `dry_run=true`); the key is 1–64 of `A-Z a-z 0-9 _ -`.
    arg: Option<String>,
    /// At most this many (clamped to 1 … 1000).
    #[param(default = 50, minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/admin/api/jobs",
    tag = "Jobs",
    operation_id = "listJobs",
    summary = "List jobs",
    description = "Jobs newest first, filtered by state, kind, queue and an argument.",
    security(("adminToken" = []), ("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The jobs, newest first.", body = Vec<Job>),
        (status = 400, description = "A parameter cannot be read (e.g. `limit` is not an integer)."),
        (status = 422, description = "`state` is not one of the seven states, or `arg` is not `key=value` with a valid key."),
        (status = 401, description = super::NO_CREDENTIALS),
        (status = 403, description = super::NOT_ADMIN),
        (status = 503, description = super::UNAVAILABLE),
    )
)]
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
    let arg = match q.arg.as_deref() {
        None | Some("") => None,
        Some(text) => Some(ArgMatch::parse(text).map_err(|e| {
            ApiError::validation(vec![FieldError {
                field: "arg".into(),
                message: e.to_string(),
            }])
        })?),
    };
    let filter = JobFilter {
        id: None,
        queue: q.queue,
        kind: q.kind,
        states,
        arg,
        limit: q.limit.unwrap_or(50).clamp(1, 1000),
    };
    let jobs = state.queue.list(&filter).await?;
    Ok(Json(Value::Array(jobs.iter().map(job_json).collect())))
}

#[utoipa::path(
    post,
    path = "/admin/api/jobs",
    tag = "Jobs",
    operation_id = "enqueueJob",
    summary = "Enqueue a job",
    description = "Checks every field (all problems are answered together) and inserts the job with its audit row.",
    security(("adminToken" = []), ("bearer" = [])),
    request_body = JobSpec,
    responses(
        (status = 201, description = "Enqueued (`deduplicated: false`).", body = Enqueued),
        (
            status = 200,
            description = "A live job holds the unique key: it is answered (`deduplicated: true`), nothing is enqueued.",
            body = Enqueued
        ),
        (status = 422, description = "A field is missing, unknown, of the wrong type or out of range, or the kind is not declared (no built-in kind, Rust handler or HTTP kind has its name); `errors` names each."),
        (status = 401, description = super::NO_CREDENTIALS),
        (status = 403, description = super::NOT_ADMIN),
        (status = 503, description = super::ENQUEUE_UNAVAILABLE),
        (status = 400, description = super::NOT_JSON),
        (status = 413, description = super::TOO_LARGE),
        (status = 415, description = super::NOT_JSON_TYPE),
    )
)]
pub async fn enqueue(
    admin: Admin,
    State(state): State<AppState>,
    extract::Json(spec): extract::Json<JobSpec>,
) -> Result<(StatusCode, Json<Enqueued>), ApiError> {
    let specs = [spec];
    crate::http::job_body::check_specs(&state, &specs, |_| String::new())?;
    let enqueued = state.queue.enqueue_audited(&specs, &admin.actor).await?;
    let first = enqueued.first().copied().ok_or_else(ApiError::internal)?;
    let status = if first.deduplicated {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(first)))
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
        let exists = !state.queue.list(&one(id)).await?.is_empty();
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
    let job = state.queue.list(&one(id)).await?;
    Ok(Json(job.first().map(job_json).unwrap_or(Value::Null)))
}

#[utoipa::path(
    post,
    path = "/admin/api/jobs/{id}/retry",
    tag = "Jobs",
    operation_id = "retryJob",
    summary = "Retry a job",
    description = "A retryable, discarded or cancelled job runs again now.",
    security(("adminToken" = []), ("bearer" = [])),
    params(("id" = i64, Path, description = "The job's id.")),
    responses(
        (status = 200, description = "The job as it is now.", body = Job),
        (status = 400, description = "The id is not an integer."),
        (status = 404, description = "No job has this id."),
        (status = 409, description = "`job-state-conflict`: the job's state does not allow this."),
        (status = 401, description = super::NO_CREDENTIALS),
        (status = 403, description = super::NOT_ADMIN),
        (status = 503, description = super::UNAVAILABLE),
    )
)]
pub async fn retry(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let changed = state.queue.retry(&one(id), &admin.actor).await?;
    after_change(&state, id, changed, "retry").await
}

#[utoipa::path(
    post,
    path = "/admin/api/jobs/{id}/discard",
    tag = "Jobs",
    operation_id = "discardJob",
    summary = "Discard a job",
    description = "A waiting job (scheduled, available or retryable) is discarded.",
    security(("adminToken" = []), ("bearer" = [])),
    params(("id" = i64, Path, description = "The job's id.")),
    responses(
        (status = 200, description = "The job as it is now.", body = Job),
        (status = 400, description = "The id is not an integer."),
        (status = 404, description = "No job has this id."),
        (status = 409, description = "`job-state-conflict`: the job's state does not allow this."),
        (status = 401, description = super::NO_CREDENTIALS),
        (status = 403, description = super::NOT_ADMIN),
        (status = 503, description = super::UNAVAILABLE),
    )
)]
pub async fn discard(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let changed = state.queue.discard(&one(id), &admin.actor).await?;
    after_change(&state, id, changed, "discard").await
}
