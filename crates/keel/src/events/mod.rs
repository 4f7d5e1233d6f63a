//! Events for the app: with `APP_EVENTS_URL` set, Keel tells the app when a user's entitlements
//! change and when a user is created or erased.
//!
//! Each event is a row of the outbox `app_events`, written in the transaction of the change it
//! describes (`record.rs`), so a change that rolls back leaves no event and a committed change
//! always has its events. A dispatcher beside the worker (`dispatch.rs`) delivers them at least
//! once, signed the Standard Webhooks way with `APP_WEBHOOK_SECRET`, the same `webhook-id` on
//! every attempt, one user's events in their sequence order. docs/EVENTS.md is the contract.

mod dispatch;
mod record;

pub use dispatch::{
    backoff, Dispatcher, Pass, DELIVERED_RETENTION, LEASE, REFUSED_BACKOFF, TIMEOUT,
};
pub use record::{check_entitlements, erase_user, user_created};

use serde::Serialize;

/// The event types Keel delivers.
pub const ENTITLEMENT_ACTIVATED: &str = "entitlement.activated";
pub const ENTITLEMENT_DEACTIVATED: &str = "entitlement.deactivated";
pub const USER_CREATED: &str = "user.created";
pub const USER_ERASED: &str = "user.erased";

/// Whether events are written, and how entitlements are read for them. Cloning is cheap.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppEvents {
    /// `APP_EVENTS_URL` is set: events are written.
    pub enabled: bool,
    /// Sandbox purchases count toward entitlements (as in every other entitlement read).
    pub include_sandbox: bool,
}

impl AppEvents {
    pub fn new(enabled: bool, include_sandbox: bool) -> Self {
        Self {
            enabled,
            include_sandbox,
        }
    }
}

/// The body of one delivery.
#[derive(Debug, Clone, Serialize)]
pub struct Envelope<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub user_id: &'a str,
    pub sequence: i64,
    pub data: serde_json::Value,
}

/// One stored event as operators see it (without its `data`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = AppEvent)]
pub struct EventView {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub user_id: String,
    pub sequence: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When the app acknowledged it; null: not yet.
    #[schema(required = true)]
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Attempts made so far.
    pub attempts: i32,
    /// When the next attempt is due (undelivered events).
    pub next_attempt_at: chrono::DateTime<chrono::Utc>,
    /// The last failed attempt's answer: the status and at most 1 KiB of the body.
    #[schema(required = true)]
    pub last_error: Option<String>,
}

impl From<crate::store::app_events::AppEventRow> for EventView {
    fn from(r: crate::store::app_events::AppEventRow) -> Self {
        Self {
            id: r.id,
            event_type: r.event_type,
            user_id: r.user_id,
            sequence: r.sequence,
            created_at: r.created_at,
            delivered_at: r.delivered_at,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
        }
    }
}

/// A new event id, which is also its `webhook-id`: `evt_` and a UUID v7 (time-ordered).
pub fn new_id() -> String {
    format!("evt_{}", uuid::Uuid::now_v7().simple())
}
