use axum::extract::{Path, State};
use axum::Json;

use super::schemas::{QueueDrained, QueueList, QueuePaused};
use super::Admin;
use crate::http::problem::ApiError;
use crate::http::state::AppState;
use crate::jobs::is_valid_name;
use crate::ops::queues;

#[utoipa::path(
    get,
    path = "/admin/api/queues",
    tag = "Queues",
    operation_id = "listQueues",
    summary = "Queue statistics",
    description = "Every queue that is configured or holds jobs: jobs per state, and whether paused.",
    security(("adminToken" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The queues.", body = QueueList),
        (status = 401, description = super::NO_CREDENTIALS),
        (status = 403, description = super::NOT_ADMIN),
        (status = 503, description = super::UNAVAILABLE),
    )
)]
pub async fn list(
    _admin: Admin,
    State(state): State<AppState>,
) -> Result<Json<QueueList>, ApiError> {
    let queues = queues::stats(&state).await?;
    Ok(Json(QueueList { queues }))
}

pub(in crate::http) fn queue_name(name: &str) -> Result<(), ApiError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::malformed(
            "queue names are 1 to 100 characters of A-Z a-z 0-9 . _ : -",
        ))
    }
}

#[utoipa::path(
    post,
    path = "/admin/api/queues/{name}/pause",
    tag = "Queues",
    operation_id = "pauseQueue",
    summary = "Pause a queue",
    description = "Workers stop taking the queue's jobs (its `queue:NAME` flag goes off); running ones finish.",
    security(("adminToken" = []), ("bearer" = [])),
    params(("name" = String, Path, description = "The queue.", pattern = "^[A-Za-z0-9._:-]{1,100}$")),
    responses(
        (status = 200, description = "Done.", body = QueuePaused),
        (status = 400, description = "The queue name is not 1 to 100 characters of `A-Z a-z 0-9 . _ : -`."),
        (status = 401, description = super::NO_CREDENTIALS),
        (status = 403, description = super::NOT_ADMIN),
        (status = 503, description = super::UNAVAILABLE),
    )
)]
pub async fn pause(
    admin: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<QueuePaused>, ApiError> {
    queue_name(&name)?;
    state.queue.set_paused(&name, true, &admin.actor).await?;
    let paused = true;
    Ok(Json(QueuePaused {
        queue: name,
        paused,
    }))
}

#[utoipa::path(
    post,
    path = "/admin/api/queues/{name}/resume",
    tag = "Queues",
    operation_id = "resumeQueue",
    summary = "Resume a queue",
    description = "Workers take the queue's jobs again.",
    security(("adminToken" = []), ("bearer" = [])),
    params(("name" = String, Path, description = "The queue.", pattern = "^[A-Za-z0-9._:-]{1,100}$")),
    responses(
        (status = 200, description = "Done.", body = QueuePaused),
        (status = 400, description = "The queue name is not 1 to 100 characters of `A-Z a-z 0-9 . _ : -`."),
        (status = 401, description = super::NO_CREDENTIALS),
        (status = 403, description = super::NOT_ADMIN),
        (status = 503, description = super::UNAVAILABLE),
    )
)]
pub async fn resume(
    admin: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<QueuePaused>, ApiError> {
    queue_name(&name)?;
    state.queue.set_paused(&name, false, &admin.actor).await?;
    let paused = false;
    Ok(Json(QueuePaused {
        queue: name,
        paused,
    }))
}

#[utoipa::path(
    post,
    path = "/admin/api/queues/{name}/drain",
    tag = "Queues",
    operation_id = "drainQueue",
    summary = "Drain a queue",
    description = "Cancels every waiting job of the queue (scheduled, available, retryable).",
    security(("adminToken" = []), ("bearer" = [])),
    params(("name" = String, Path, description = "The queue.", pattern = "^[A-Za-z0-9._:-]{1,100}$")),
    responses(
        (status = 200, description = "Done.", body = QueueDrained),
        (status = 400, description = "The queue name is not 1 to 100 characters of `A-Z a-z 0-9 . _ : -`."),
        (status = 401, description = super::NO_CREDENTIALS),
        (status = 403, description = super::NOT_ADMIN),
        (status = 503, description = super::UNAVAILABLE),
    )
)]
pub async fn drain(
    admin: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<QueueDrained>, ApiError> {
    queue_name(&name)?;
    let cancelled = state.queue.drain(&name, &admin.actor).await?;
    Ok(Json(QueueDrained {
        queue: name,
        cancelled,
    }))
}
