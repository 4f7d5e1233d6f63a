use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::schemas::ScheduleList;
use super::Admin;
use crate::http::problem::ApiError;
use crate::http::scheduler::Fired;
use crate::http::state::AppState;

#[utoipa::path(
    get,
    path = "/admin/api/schedules",
    tag = "Schedules",
    operation_id = "listSchedules",
    summary = "List schedules",
    description = "Every schedule with its last and next firing.",
    security(("adminToken" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The schedules.", body = ScheduleList),
        (status = 401, description = super::NO_CREDENTIALS),
        (status = 403, description = super::NOT_ADMIN),
        (status = 503, description = super::UNAVAILABLE),
    )
)]
pub async fn list(
    _admin: Admin,
    State(state): State<AppState>,
) -> Result<Json<ScheduleList>, ApiError> {
    let report = crate::ops::queues::report(&state).await?;
    let schedules = report.schedules;
    Ok(Json(ScheduleList { schedules }))
}

#[utoipa::path(
    post,
    path = "/admin/api/schedules/{name}/trigger",
    tag = "Schedules",
    operation_id = "fireSchedule",
    summary = "Fire a schedule now",
    description = "Fires at most once per period of the schedule's cron expression.",
    security(("adminToken" = []), ("bearer" = [])),
    params(("name" = String, Path, description = "The schedule's name.")),
    responses(
        (status = 202, description = "Fired, or already fired in this period.", body = Fired),
        (status = 404, description = "No schedule of this name."),
        (status = 401, description = super::NO_CREDENTIALS),
        (status = 403, description = super::NOT_ADMIN),
        (status = 503, description = super::ENQUEUE_UNAVAILABLE),
    )
)]
pub async fn trigger(
    admin: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Fired>), ApiError> {
    let fired = state.scheduler.trigger(&name, None, &admin.actor).await?;
    Ok((StatusCode::ACCEPTED, Json(Fired::from(fired))))
}
