//! Pausing, resuming and draining a queue (after a confirmation page that says how many jobs
//! wait), and firing a schedule now: the overview's and the schedules page's actions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::layout;
use super::pages::see_other;
use super::refusal::Refusal;
use super::session::Change;
use crate::http::admin::queues::queue_name;
use crate::http::state::AppState;
use crate::jobs::{JobFilter, JobState};

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

/// Cancels every waiting job (scheduled, available, retryable) of a queue: first a page that
/// says how many and asks to confirm; with `confirm=yes`, the drain, with its audit row.
pub async fn drain(
    State(state): State<AppState>,
    Path(name): Path<String>,
    change: Change,
) -> Result<Response, Refusal> {
    queue_name(&name)?;
    let encoded = crate::percent::encode(&name);
    if change.field("confirm") == "yes" {
        let cancelled = state.queue.drain(&name, &change.actor).await?;
        return Ok(see_other(&format!(
            "/admin?drained={encoded}&cancelled={cancelled}"
        )));
    }
    let waiting = JobFilter {
        queue: Some(name.clone()),
        states: vec![
            JobState::Scheduled,
            JobState::Available,
            JobState::Retryable,
        ],
        ..JobFilter::default()
    };
    let count = state.queue.count(&waiting, i64::MAX).await?;
    let op = change.operator();
    let body = html! {
        h1 { "Drain " (name) "?" }
        @if count == 0 {
            p.notice { "No job waits in " (name) ": there is nothing to drain." }
        } @else {
            p.confirm {
                "This cancels " strong.count { (count) } " waiting "
                (if count == 1 { "job" } else { "jobs" }) " of " strong { (name) }
                " (scheduled, available or retryable). Running jobs finish; cancelled jobs can be retried later."
            }
            form.inline method="post" action={ "/admin/queues/" (encoded) "/drain" } {
                input type="hidden" name="csrf" value=(op.csrf);
                input type="hidden" name="confirm" value="yes";
                button.danger type="submit" { "Cancel " (count) " waiting " (if count == 1 { "job" } else { "jobs" }) }
            }
        }
        " "
        a href="/admin" { "Back" }
    };
    Ok(layout::respond(
        StatusCode::OK,
        layout::page("Drain a queue", Some(&op), body),
    ))
}
