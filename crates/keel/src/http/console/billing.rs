//! Billing events: stored provider events found by provider, event id, user, type and time of
//! receipt, and the replay of one (as `keel webhooks replay` does). The page shows only what Keel
//! parsed from an event (its type, user, product, environment, times, outcome): never the
//! payload, which stays sealed.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDateTime, Utc};
use maud::html;
use serde::Deserialize;

use super::layout;
use super::pages::{at, see_other};
use super::refusal::Refusal;
use super::session::{Change, Operator};
use crate::billing::{registry, Provider};
use crate::http::state::AppState;
use crate::store::billing::EventFilter;

/// How many events the page shows.
const SHOWN: i64 = 100;

#[derive(Deserialize, Default)]
pub struct Find {
    provider: Option<String>,
    event_id: Option<String>,
    user: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// Received at or after (`YYYY-MM-DDTHH:MM`, UTC).
    from: Option<String>,
    /// Received before (`YYYY-MM-DDTHH:MM`, UTC).
    to: Option<String>,
    replayed: Option<String>,
    outcome: Option<String>,
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// A time from a `datetime-local` field, read as UTC.
fn time(field: &str, v: &Option<String>) -> Result<Option<DateTime<Utc>>, Refusal> {
    let Some(v) = given(v) else { return Ok(None) };
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(&v, f).ok())
        .map(|t| Some(t.and_utc()))
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                format!("`{field}` must be a time like 2026-01-31T09:30 (UTC)."),
            )
        })
}

fn provider(v: &Option<String>) -> Result<Option<Provider>, Refusal> {
    match given(v) {
        None => Ok(None),
        Some(name) => registry::named(&name).map(|p| Some(p.id())).ok_or_else(|| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                format!("Unknown provider; one of {}.", registry::names().join(", ")),
            )
        }),
    }
}

pub async fn find(
    op: Operator,
    State(state): State<AppState>,
    Query(q): Query<Find>,
) -> Result<Response, Refusal> {
    let chosen = provider(&q.provider)?;
    let filter = EventFilter {
        provider: chosen.map(|p| p.as_str().to_string()),
        user_id: given(&q.user),
        event_type: given(&q.event_type),
        event_id: given(&q.event_id),
        received_from: time("from", &q.from)?,
        received_before: time("to", &q.to)?,
        limit: SHOWN,
    };
    let events = state.billing.events(&filter).await?;
    let value = |v: &Option<String>| given(v).unwrap_or_default();
    let body = html! {
        h1 { "Billing events" }
        form.filters method="get" action="/admin/billing" {
            label { "provider" select name="provider" {
                option value="" { "any" }
                @for name in registry::names() {
                    option value=(name) selected[chosen.map(|p| p.as_str()) == Some(name)] { (name) }
                }
            } }
            label { "event id" input type="text" name="event_id" value=(value(&q.event_id)); }
            label { "user id" input type="text" name="user" value=(value(&q.user)); }
            label { "type" input type="text" name="type" value=(value(&q.event_type)); }
            label { "received from (UTC)" input type="datetime-local" name="from" value=(value(&q.from)); }
            label { "received before (UTC)" input type="datetime-local" name="to" value=(value(&q.to)); }
            button type="submit" { "Find" }
        }
        @if let (Some(id), Some(outcome)) = (given(&q.replayed), given(&q.outcome)) {
            p.notice { "Replayed " code { (id) } ": " (outcome) "." }
        }
        p.hint { "Only what Keel parsed from each event is shown; payloads stay sealed. Replaying applies an event again under the current configuration and changes nothing a first application did not." }
        div #live data-live="billing" {
            table {
                tr { th { "received" } th { "provider" } th { "event id" } th { "type" } th { "user" } th { "product" } th { "environment" } th { "event time" } th { "outcome" } th {} }
                @for e in &events {
                    tr {
                        td { (at(Some(e.received_at))) } td { (e.provider) } td { code { (e.event_id) } } td { (e.event_type) }
                        td { @if let Some(user) = &e.user_id { a href={ "/admin/users?id=" (crate::percent::encode(user)) } { (user) } } @else { "—" } }
                        td { (e.product_id.as_deref().unwrap_or("—")) } td { (e.environment) }
                        td { (at(Some(e.event_at))) } td { (e.outcome) }
                        td { @if !op.read_only {
                            form.inline method="post" action="/admin/billing/replay" {
                                input type="hidden" name="csrf" value=(op.csrf);
                                input type="hidden" name="provider" value=(e.provider);
                                input type="hidden" name="event_id" value=(e.event_id);
                                button type="submit" { "Replay" }
                            }
                        } }
                    }
                }
            }
            @if events.is_empty() { p { "No stored event matches." } }
            @if events.len() as i64 == SHOWN { p.hint { "The newest " (SHOWN) " are shown; narrow the search to see others." } }
        }
    };
    Ok(layout::respond(
        StatusCode::OK,
        layout::page("Billing events", Some(&op), body),
    ))
}

/// Applies one stored event again, audited with the session's actor.
pub async fn replay(State(state): State<AppState>, change: Change) -> Result<Response, Refusal> {
    let provider =
        provider(&Some(change.field("provider").to_string()))?.ok_or_else(Refusal::bad_form)?;
    let event_id = change.field("event_id").trim();
    if event_id.is_empty() {
        return Err(Refusal::bad_form());
    }
    let replayed = state
        .billing
        .replay(provider, event_id, &change.actor)
        .await?;
    Ok(see_other(&format!(
        "/admin/billing?provider={}&event_id={}&replayed={}&outcome={}",
        provider.as_str(),
        crate::percent::encode(event_id),
        crate::percent::encode(&replayed.event_id),
        replayed.outcome
    )))
}
