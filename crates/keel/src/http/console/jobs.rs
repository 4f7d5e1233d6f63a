//! Jobs: a filtered list, one job's detail, and the operator's actions on them.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::layout::{self, action_button};
use super::pages::see_other;
use super::refusal::Refusal;
use super::session::{Change, Operator};
use crate::http::state::AppState;
use crate::jobs::{JobFilter, JobState};

const STATES: [&str; 7] = [
    "scheduled",
    "available",
    "running",
    "retryable",
    "completed",
    "discarded",
    "cancelled",
];

#[derive(Deserialize, Default)]
pub struct Filters {
    state: Option<String>,
    kind: Option<String>,
    queue: Option<String>,
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

pub async fn list(
    op: Operator,
    State(state): State<AppState>,
    Query(f): Query<Filters>,
) -> Result<Response, Refusal> {
    let chosen = nonempty(&f.state);
    let states = match chosen.as_deref() {
        None => Vec::new(),
        Some(s) => vec![JobState::parse(s)
            .ok_or_else(|| Refusal::new(StatusCode::BAD_REQUEST, "Unknown job state."))?],
    };
    let (queue, kind) = (nonempty(&f.queue), nonempty(&f.kind));
    let filter = JobFilter {
        id: None,
        queue: queue.clone(),
        kind: kind.clone(),
        states,
        limit: 200,
    };
    let jobs = state.queue.list(&filter).await?;
    let body = html! {
        h1 { "Jobs" }
        form.filters method="get" action="/admin/jobs" {
            label { "queue" input type="text" name="queue" value=(queue.as_deref().unwrap_or_default()); }
            label { "kind" input type="text" name="kind" value=(kind.as_deref().unwrap_or_default()); }
            label { "state" select name="state" {
                option value="" { "any" }
                @for s in STATES { option value=(s) selected[chosen.as_deref() == Some(s)] { (s) } }
            } }
            button type="submit" { "Filter" }
        }
        @if let Some(q) = &queue {
            p { (action_button(&op, "/admin/jobs/retry-failed", &format!("Retry every failed job of {q} (retryable, discarded or cancelled)"), &[("queue", q)])) }
        }
        table {
            tr { th { "id" } th { "queue" } th { "kind" } th { "state" } th { "attempt" } th { "run at" } th { "last error" } }
            @for j in &jobs {
                tr {
                    td { a href={ "/admin/jobs/" (j.id) } { (j.id) } }
                    td { (j.queue) } td { (j.kind) }
                    td { span class={ "state-" (j.state.as_str()) } { (j.state.as_str()) } }
                    td { (j.attempt) "/" (j.max_attempts) }
                    td { (j.run_at.format("%Y-%m-%d %H:%M:%S")) }
                    td { (j.last_error.as_deref().map(first_line).unwrap_or_default()) }
                }
            }
        }
    };
    Ok(layout::respond(
        StatusCode::OK,
        layout::page("Jobs", Some(&op), body),
    ))
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(120)
        .collect()
}

pub async fn detail(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, Refusal> {
    let filter = JobFilter {
        id: Some(id),
        limit: 1,
        ..JobFilter::default()
    };
    let job = state
        .queue
        .list(&filter)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Refusal::not_found("job"))?;
    let retryable = matches!(
        job.state,
        JobState::Retryable | JobState::Discarded | JobState::Cancelled
    );
    let discardable = matches!(
        job.state,
        JobState::Scheduled | JobState::Available | JobState::Retryable
    );
    let args = serde_json::to_string_pretty(&job.args).unwrap_or_default();
    let body = html! {
        h1 { "Job " (job.id) }
        table {
            tr { th { "queue" } td { (job.queue) } }
            tr { th { "kind" } td { (job.kind) } }
            tr { th { "state" } td { span class={ "state-" (job.state.as_str()) } { (job.state.as_str()) } } }
            tr { th { "attempts" } td { (job.attempt) " of " (job.max_attempts) } }
            tr { th { "priority" } td { (job.priority) } }
            tr { th { "unique key" } td { (job.unique_key.as_deref().unwrap_or("—")) } }
            tr { th { "created" } td { (job.created_at.to_rfc3339()) } }
            tr { th { "runs at" } td { (job.run_at.to_rfc3339()) } }
            tr { th { "finished" } td { (job.finished_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| "—".into())) } }
        }
        h2 { "Arguments" }
        pre { (args) }
        h2 { "Last error" }
        pre { (job.last_error.as_deref().unwrap_or("none")) }
        p {
            @if retryable { (action_button(&op, &format!("/admin/jobs/{id}/retry"), "Retry", &[])) }
            " "
            @if discardable { (action_button(&op, &format!("/admin/jobs/{id}/discard"), "Discard", &[])) }
        }
    };
    Ok(layout::respond(
        StatusCode::OK,
        layout::page(&format!("Job {id}"), Some(&op), body),
    ))
}

fn one(id: i64) -> JobFilter {
    JobFilter {
        id: Some(id),
        limit: 1,
        ..JobFilter::default()
    }
}

pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    change: Change,
) -> Result<Response, Refusal> {
    state.queue.retry(&one(id), &change.actor).await?;
    Ok(see_other(&format!("/admin/jobs/{id}")))
}

pub async fn discard(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    change: Change,
) -> Result<Response, Refusal> {
    state.queue.discard(&one(id), &change.actor).await?;
    Ok(see_other(&format!("/admin/jobs/{id}")))
}

/// Every job of one queue that will not run by itself (retryable, discarded or cancelled) runs
/// again now, as `keel queue retry --queue` does.
pub async fn retry_failed(
    State(state): State<AppState>,
    change: Change,
) -> Result<Response, Refusal> {
    let queue = change.field("queue").trim().to_string();
    if queue.is_empty() {
        return Err(Refusal::bad_form());
    }
    let filter = JobFilter {
        id: None,
        queue: Some(queue.clone()),
        kind: None,
        states: Vec::new(),
        limit: 10_000,
    };
    state.queue.retry(&filter, &change.actor).await?;
    Ok(see_other(&format!(
        "/admin/jobs?queue={}",
        crate::percent::encode(&queue)
    )))
}
