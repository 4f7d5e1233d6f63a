//! Users: lookup by id, their entitlements, and manual grants and revocations with a reason.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::layout;
use super::pages::see_other;
use super::refusal::Refusal;
use super::session::{Change, Operator};
use crate::billing::Override;
use crate::http::admin::users::check;
use crate::http::state::AppState;

#[derive(Deserialize)]
pub struct Lookup {
    id: Option<String>,
}

fn user_path(id: &str) -> String {
    format!("/admin/users?id={}", crate::percent::encode(id))
}

pub async fn show(
    op: Operator,
    State(state): State<AppState>,
    Query(q): Query<Lookup>,
) -> Result<Response, Refusal> {
    let id = q.id.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let found = match &id {
        Some(id) => Some((
            state.users.get(id).await?,
            state.billing.entitlements(id).await?,
        )),
        None => None,
    };
    let body = html! {
        h1 { "Users" }
        form.filters method="get" action="/admin/users" {
            label { "user id" input type="text" name="id" value=(id.as_deref().unwrap_or_default()) required; }
            button type="submit" { "Look up" }
        }
        @if let (Some(id), Some((user, entitlements))) = (&id, &found) {
            @match user {
                Some(u) => p { "User " code { (u.id) } ", tenant " (u.tenant_id.as_deref().unwrap_or("—"))
                    ", first seen " (u.created_at.to_rfc3339()) ", last seen " (u.last_seen_at.to_rfc3339()) },
                None => p { "No token of " code { (id) } " was seen yet; purchases and grants may name it." },
            }
            h2 { "Entitlements" }
            table {
                tr { th { "entitlement" } th { "active" } th { "until" } th { "source" } th { "product" } th {} }
                @for (name, e) in entitlements {
                    tr {
                        td { code { (name) } }
                        td { @if e.active { span.on { "active" } } @else { span.off { "inactive" } } }
                        td { (e.expires_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| "never".into())) }
                        td { (e.source.as_str()) } td { (e.product_id.as_deref().unwrap_or("—")) }
                        td { @if e.active && !op.read_only {
                            form.inline method="post" action={ "/admin/users/" (crate::percent::encode(id)) "/revoke" } {
                                input type="hidden" name="csrf" value=(op.csrf);
                                input type="hidden" name="entitlement" value=(name);
                                input type="text" name="reason" placeholder="reason" required;
                                button type="submit" { "Revoke" }
                            }
                        } }
                    }
                }
            }
            @if !op.read_only {
                h2 { "Grant an entitlement" }
                form.filters method="post" action={ "/admin/users/" (crate::percent::encode(id)) "/grant" } {
                    input type="hidden" name="csrf" value=(op.csrf);
                    label { "entitlement" input type="text" name="entitlement" required; }
                    label { "reason" input type="text" name="reason" required; }
                    button type="submit" { "Grant" }
                }
            }
        }
    };
    Ok(layout::respond(
        StatusCode::OK,
        layout::page("Users", Some(&op), body),
    ))
}

async fn set(
    state: &AppState,
    id: &str,
    change: &Change,
    revoked: bool,
) -> Result<Response, Refusal> {
    let (entitlement, reason) = (
        change.field("entitlement").trim(),
        change.field("reason").trim(),
    );
    check(id, entitlement, reason)?;
    let o = Override {
        entitlement: entitlement.to_string(),
        revoked,
        expires_at: None,
        reason: reason.to_string(),
    };
    state.billing.set_override(id, o, &change.actor).await?;
    Ok(see_other(&user_path(id)))
}

pub async fn grant(
    State(state): State<AppState>,
    Path(id): Path<String>,
    change: Change,
) -> Result<Response, Refusal> {
    set(&state, &id, &change, false).await
}

pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    change: Change,
) -> Result<Response, Refusal> {
    set(&state, &id, &change, true).await
}
