//! Pausing and resuming a queue, and firing a schedule now: the overview's actions.

use axum::extract::{Path, State};
use axum::response::Response;

use super::pages::see_other;
use super::refusal::Refusal;
use super::session::Change;
use crate::http::admin::queues::queue_name;
use crate::http::state::AppState;

pub async fn pause(
    State(state): State<AppState>,
    Path(name): Path<String>,
    change: Change,
) -> Result<Response, Refusal> {
    set_paused(&state, &name, true, &change).await
}

pub async fn resume(
    State(state): State<AppState>,
    Path(name): Path<String>,
    change: Change,
) -> Result<Response, Refusal> {
    set_paused(&state, &name, false, &change).await
}

async fn set_paused(
    state: &AppState,
    name: &str,
    paused: bool,
    change: &Change,
) -> Result<Response, Refusal> {
    queue_name(name)?;
    state.queue.set_paused(name, paused, &change.actor).await?;
    Ok(see_other("/admin"))
}

/// Fires a schedule now, as `POST /admin/api/schedules/{name}/trigger` does (once per period of
/// its cron), and shows the job of this period's firing.
pub async fn trigger(
    State(state): State<AppState>,
    Path(name): Path<String>,
    change: Change,
) -> Result<Response, Refusal> {
    let fired = state.scheduler.trigger(&name, None, &change.actor).await?;
    Ok(see_other(&format!("/admin/jobs/{}", fired.job_id)))
}
