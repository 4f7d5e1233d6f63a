//! The overview (what `keel report` shows), the kill switches and the audit log.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::layout::{self, action_button};
use super::refusal::Refusal;
use super::session::{Change, Operator};
use crate::http::state::AppState;

pub fn at(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "—".into())
}

/// What the overview reports of the last drain.
#[derive(Deserialize, Default)]
pub struct OverviewQuery {
    drained: Option<String>,
    cancelled: Option<u64>,
}

pub async fn overview(
    op: Operator,
    State(state): State<AppState>,
    Query(q): Query<OverviewQuery>,
) -> Result<Response, Refusal> {
    let report = crate::ops::queues::report(&state).await?;
    let body = html! {
        h1 { "Overview" }
        @if let (Some(queue), Some(n)) = (&q.drained, q.cancelled) {
            p.notice { "Drained " (queue) ": cancelled " (n) " waiting " (if n == 1 { "job" } else { "jobs" }) "." }
        }
        div #live data-live="overview" {
        p { "Generated " (at(Some(report.generated_at))) }
        h2 { "Queues" }
        table {
            tr { th { "queue" } th { "backlog" } th { "running" } th { "oldest waiting" } th { "processing" } th {} }
            @for (name, q) in &report.queues {
                tr {
                    td { a href={ "/admin/jobs?queue=" (name) } { (name) } }
                    td { (q.backlog) } td { (q.running) }
                    td { @if let Some(s) = q.oldest_waiting_s { (format!("{s:.1} s")) } @else { "—" } }
                    td { @if q.paused { span.off { "paused" } } @else { span.on { "on" } } }
                    td { @if q.paused {
                        (action_button(&op, &format!("/admin/queues/{}/resume", crate::percent::encode(name)), "Resume", &[]))
                    } @else {
                        (action_button(&op, &format!("/admin/queues/{}/pause", crate::percent::encode(name)), "Pause", &[]))
                    }
                    " "
                    @if q.backlog > 0 {
                        (action_button(&op, &format!("/admin/queues/{}/drain", crate::percent::encode(name)), "Drain…", &[]))
                    } }
                }
            }
        }
        h2 { "Failed jobs" }
        table {
            tr { th { "queue" } th { "kind" } th { "retryable" } th { "discarded" } th {} }
            @for f in &report.failed {
                tr {
                    td { (f.queue) } td { (f.kind) } td { (f.retryable) } td { (f.discarded) }
                    td { a href={ "/admin/jobs?state=failed&queue=" (crate::percent::encode(&f.queue)) "&kind=" (crate::percent::encode(&f.kind)) } { "see jobs" } }
                }
            }
        }
        h2 { a href="/admin/schedules" { "Schedules" } }
        table {
            tr { th { "name" } th { "cron" } th { "time zone" } th { "kind" } th { "last run" } th { "next run" } th {} }
            @for s in &report.schedules {
                tr { td { (s.name) } td { code { (s.cron) } } td { (s.timezone) } td { (s.kind) } td { (at(s.last_fired_at)) } td { (at(s.next_fire_at)) }
                    td { (action_button(&op, &format!("/admin/schedules/{}/trigger", crate::percent::encode(&s.name)), "Run now", &[])) } }
            }
        }
        h2 { "Billing webhooks, last 24 hours" }
        table {
            tr { th { "provider" } th { "outcome" } th { "events" } th { "last received" } }
            @for w in &report.webhooks {
                tr { td { a href={ "/admin/billing?provider=" (crate::percent::encode(&w.provider)) } { (w.provider) } } td { (w.outcome) } td { (w.events) } td { (at(w.last_received_at)) } }
            }
        }
        }
    };
    Ok(layout::respond(
        StatusCode::OK,
        layout::page("Overview", Some(&op), body),
    ))
}

pub async fn flags(op: Operator, State(state): State<AppState>) -> Result<Response, Refusal> {
    let flags = state.flags.list().await?;
    let body = html! {
        h1 { "Kill switches" }
        p { "Each process sees a change within a few seconds." }
        div #live data-live="flags" {
        table {
            tr { th { "switch" } th { "state" } th { "set by" } th { "at" } th {} }
            @for f in &flags {
                tr {
                    td { code { (f.name) } }
                    td { @if f.enabled { span.on { "on" } } @else { span.off { "off" } } }
                    td { (f.source) } td { (at(f.updated_at)) }
                    td {
                        @let (value, label) = if f.enabled { ("false", "Switch off") } else { ("true", "Switch on") };
                        (action_button(&op, &format!("/admin/flags/{}", f.name), label, &[("enabled", value)]))
                    }
                }
            }
        }
        }
    };
    Ok(layout::respond(
        StatusCode::OK,
        layout::page("Kill switches", Some(&op), body),
    ))
}

pub async fn set_flag(
    State(state): State<AppState>,
    Path(name): Path<String>,
    change: Change,
) -> Result<Response, Refusal> {
    let enabled = match change.field("enabled") {
        "true" => true,
        "false" => false,
        _ => return Err(Refusal::bad_form()),
    };
    state.flags.set(&name, enabled, &change.actor).await?;
    Ok(see_other("/admin/flags"))
}

pub fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct AuditQuery {
    target: Option<String>,
}

pub async fn audit(
    op: Operator,
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Result<Response, Refusal> {
    let target = q.target.filter(|t| !t.is_empty());
    let rows = state.audit_log(target.as_deref(), 200).await?;
    let body = html! {
        h1 { "Audit log" }
        form.filters method="get" action="/admin/audit" {
            label { "target" input type="text" name="target" value=(target.as_deref().unwrap_or_default()); }
            button type="submit" { "Filter" }
        }
        div #live data-live="audit" {
        table {
            tr { th { "at" } th { "actor" } th { "action" } th { "target" } th { "details" } }
            @for r in &rows {
                tr {
                    td { (at(Some(r.at))) } td { (r.actor) } td { code { (r.action) } }
                    td { (r.target.as_deref().unwrap_or("—")) }
                    td { code { (r.metadata.to_string()) } }
                }
            }
        }
        }
    };
    Ok(layout::respond(
        StatusCode::OK,
        layout::page("Audit log", Some(&op), body),
    ))
}
