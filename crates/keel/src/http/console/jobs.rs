//! Jobs: a filtered list (with a checkbox on each job some action applies to), one job's detail,
//! and the actions on one job. Actions on a selection or a whole filter are in `bulk.rs`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;

use super::job_actions::{past, states_words, title, ACTIONS, CAP_WORDS};
use super::job_filter::{JobsFilter, STATE_CHOICES};
use super::layout::{self, action_button};
use super::pages::see_other;
use super::refusal::Refusal;
use super::session::{Change, Operator};
use crate::http::state::AppState;
use crate::jobs::{JobAction, JobFilter, JobRow};

/// The list's query: the filter, and what the last bulk action did.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    queue: Option<String>,
    kind: Option<String>,
    state: Option<String>,
    arg: Option<String>,
    done: Option<String>,
    changed: Option<u64>,
    skipped: Option<u64>,
}

/// How many jobs the list shows.
const SHOWN: i64 = 200;

pub async fn list(
    op: Operator,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, Refusal> {
    let f = JobsFilter {
        queue: q.queue,
        kind: q.kind,
        state: q.state,
        arg: q.arg,
    }
    .trimmed();
    let jobs = state.queue.list(&f.job_filter(SHOWN)?).await?;
    let chosen = f.state.as_deref();
    let states = f.states()?;
    let offered: Vec<JobAction> = ACTIONS
        .into_iter()
        .filter(|a| !a.states_within(&states).is_empty())
        .collect();
    let selectable = |j: &JobRow| !op.read_only && ACTIONS.iter().any(|a| a.allows(j.state));
    let table = html! {
        table {
            tr { th {} th { "id" } th { "queue" } th { "kind" } th { "state" } th { "attempt" } th { "run at" } th { "last error" } }
            @for j in &jobs {
                tr {
                    td { @if selectable(j) { input type="checkbox" name="id" value=(j.id) aria-label={ "select job " (j.id) }; } }
                    td { a href={ "/admin/jobs/" (j.id) } { (j.id) } }
                    td { (j.queue) } td { (j.kind) }
                    td { span class={ "state-" (j.state.as_str()) } { (j.state.as_str()) } }
                    td { (j.attempt) "/" (j.max_attempts) }
                    td { (j.run_at.format("%Y-%m-%d %H:%M:%S")) }
                    td { (j.last_error.as_deref().map(first_line).unwrap_or_default()) }
                }
            }
        }
        @if jobs.len() as i64 == SHOWN {
            p.hint { "The newest " (SHOWN) " are shown; narrow the filter to see others." }
        }
    };
    let body = html! {
        h1 { "Jobs" }
        form.filters method="get" action="/admin/jobs" {
            label { "queue" input type="text" name="queue" value=(f.queue.as_deref().unwrap_or_default()); }
            label { "kind" input type="text" name="kind" value=(f.kind.as_deref().unwrap_or_default()); }
            label { "state" select name="state" {
                option value="" { "any" }
                @for s in STATE_CHOICES {
                    option value=(s) selected[chosen == Some(s)] {
                        @if s == "failed" { "failed (retryable or discarded)" } @else { (s) }
                    }
                }
            } }
            label { "argument" input type="text" name="arg" placeholder="key=value" value=(f.arg.as_deref().unwrap_or_default()); }
            button type="submit" { "Filter" }
        }
        @if let (Some(done), Some(changed)) = (q.done.as_deref().and_then(JobAction::parse), q.changed) {
            p.notice {
                (past(done)) " " (changed) " " (if changed == 1 { "job" } else { "jobs" }) "."
                @if let Some(skipped) = q.skipped.filter(|n| *n > 0) {
                    " " (skipped) " selected " (if skipped == 1 { "job was" } else { "jobs were" })
                    " in a state " (done.as_str()) " does not apply to and " (if skipped == 1 { "was" } else { "were" }) " left alone."
                }
            }
        }
        @if !op.read_only && !offered.is_empty() {
            div.bulk {
                "Everything this filter matches (" (f.describe()) "), at most " (CAP_WORDS) " jobs per action: "
                @for action in &offered {
                    form.inline method="post" action="/admin/jobs/bulk" {
                        input type="hidden" name="csrf" value=(op.csrf);
                        input type="hidden" name="action" value=(action.as_str());
                        (f.hidden())
                        button type="submit" { (whole_filter_label(*action, &f)) }
                    }
                    " "
                }
                @if let (Some(q), None) = (&f.queue, &f.state) {
                    @let failed = JobsFilter { state: Some("failed".into()), ..f.clone() };
                    form.inline method="post" action="/admin/jobs/bulk" {
                        input type="hidden" name="csrf" value=(op.csrf);
                        input type="hidden" name="action" value="retry";
                        (failed.hidden())
                        button type="submit" { "Retry every failed job of " (q) "…" }
                    }
                }
            }
        }
        div #live data-live="jobs" {
            @if op.read_only {
                (table)
            } @else {
                form #selection method="post" action="/admin/jobs/selection" {
                    input type="hidden" name="csrf" value=(op.csrf);
                    (f.hidden())
                    p.selection {
                        "Selected jobs: "
                        @for action in ACTIONS {
                            button type="submit" name="action" value=(action.as_str()) { (title(action)) " selected" }
                            " "
                        }
                        span.hint { "(each only where the job's state allows it)" }
                    }
                    (table)
                }
            }
        }
    };
    Ok(layout::respond(
        StatusCode::OK,
        layout::page("Jobs", Some(&op), body),
    ))
}

fn whole_filter_label(action: JobAction, f: &JobsFilter) -> String {
    match (action, f.state.as_deref(), f.queue.as_deref()) {
        (JobAction::Retry, Some("failed"), Some(q)) => format!("Retry every failed job of {q}…"),
        (JobAction::Retry, Some("failed"), None) => "Retry every failed job…".to_string(),
        _ => format!("{} all matching…", title(action)),
    }
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
    let job = find(&state, id).await?;
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
        p { (actions(&op, &job)) }
    };
    Ok(layout::respond(
        StatusCode::OK,
        layout::page(&format!("Job {id}"), Some(&op), body),
    ))
}

/// A button for each action the job's state allows.
fn actions(op: &Operator, job: &JobRow) -> Markup {
    html! {
        @for action in ACTIONS {
            @if action.allows(job.state) {
                (action_button(op, &format!("/admin/jobs/{}/{}", job.id, action.as_str()), title(action), &[]))
                " "
            }
        }
    }
}

fn one(id: i64) -> JobFilter {
    JobFilter {
        id: Some(id),
        limit: 1,
        ..JobFilter::default()
    }
}

async fn find(state: &AppState, id: i64) -> Result<JobRow, Refusal> {
    state
        .queue
        .list(&one(id))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Refusal::not_found("job"))
}

async fn act_on_one(
    state: &AppState,
    id: i64,
    action: JobAction,
    change: &Change,
) -> Result<Response, Refusal> {
    let changed = state.queue.act(action, &one(id), &change.actor).await?;
    if changed.is_empty() {
        let job = find(state, id).await?;
        return Err(Refusal::new(
            StatusCode::CONFLICT,
            format!(
                "Job {id} is {}: {} applies only to {} jobs.",
                job.state.as_str(),
                action.as_str(),
                states_words(action)
            ),
        ));
    }
    Ok(see_other(&format!("/admin/jobs/{id}")))
}

pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    change: Change,
) -> Result<Response, Refusal> {
    act_on_one(&state, id, JobAction::Retry, &change).await
}

pub async fn discard(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    change: Change,
) -> Result<Response, Refusal> {
    act_on_one(&state, id, JobAction::Discard, &change).await
}
