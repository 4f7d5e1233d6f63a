//! Schedules: each one (built-in or `[[schedules]]` of `keel.toml`) with its cron, time zone,
//! next run and last run (from its firing records, with the job that firing enqueued), and the
//! button that fires it now (`queues::trigger`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::html;

use super::layout::{self, action_button};
use super::pages::at;
use super::refusal::Refusal;
use super::session::Operator;
use crate::http::state::AppState;

/// `t` in UTC and, for a schedule read in another zone, in that zone too.
fn both(t: DateTime<Utc>, zone: &str) -> String {
    let utc = at(Some(t));
    match zone.parse::<chrono_tz::Tz>() {
        Ok(tz) if zone != "UTC" => format!(
            "{utc} ({} {zone})",
            t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S")
        ),
        _ => utc,
    }
}

pub async fn list(op: Operator, State(state): State<AppState>) -> Result<Response, Refusal> {
    let scheduler = &state.scheduler;
    let now = scheduler.now();
    let firings = scheduler.latest_firings().await?;
    let body = html! {
        h1 { "Schedules" }
        p { "Each schedule fires once per tick across every process. " em { "Run now" } " fires the current period's tick if it has not fired yet; otherwise it shows that tick's job." }
        div #live data-live="schedules" {
            table {
                tr { th { "name" } th { "kind" } th { "cron" } th { "time zone" } th { "missed ticks" } th { "next run" } th { "last run" } th {} }
                @for s in scheduler.schedules() {
                    @let last = firings.get(&s.name);
                    tr id={ "schedule-" (s.name) } {
                        td { (s.name) } td { (s.kind) } td { code { (s.expr) } } td { (s.timezone) } td { (s.missed) }
                        td.next { (s.cron.next_after(now).map(|t| both(t, s.timezone)).unwrap_or_else(|| "—".into())) }
                        td.last {
                            @match last {
                                Some(f) => {
                                    (both(f.fired_at, s.timezone))
                                    @if let Some(job) = f.job_id { " · " a href={ "/admin/jobs/" (job) } { "job " (job) } }
                                }
                                None => "never",
                            }
                        }
                        td { (action_button(&op, &format!("/admin/schedules/{}/trigger", crate::percent::encode(&s.name)), "Run now", &[])) }
                    }
                }
            }
        }
    };
    Ok(layout::respond(
        StatusCode::OK,
        layout::page("Schedules", Some(&op), body),
    ))
}
