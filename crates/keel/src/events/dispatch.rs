//! Delivering the outbox: claim due events under a lease (at most the oldest undelivered event
//! of each user), POST each signed to `APP_EVENTS_URL`, then record the answer. 2xx: delivered.
//! 408, 425, 429, 5xx, a timeout or a failed connection: tried again after a growing delay, or
//! after the app's `Retry-After`. Any other answer: tried again after [`REFUSED_BACKOFF`], never
//! dropped, since a later event of the user cannot go before it (docs/EVENTS.md says why).
//! Every attempt carries the same `webhook-id`, the event's id.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{check_entitlements, AppEvents, Envelope};
use crate::clock::Clock;
use crate::crypto::standard_webhooks::WebhookSecret;
use crate::outbound::{self, Message, Outcome};
use crate::services::Services;
use crate::store::app_events::AppEventRow;
use crate::store::{Db, StoreError};

/// How long one delivery may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claim holds an event: a process that dies mid-delivery loses it after this.
pub const LEASE: Duration = Duration::from_secs(60);
/// The wait after an answer that refuses the event (a 4xx other than 408, 425, 429).
pub const REFUSED_BACKOFF: Duration = Duration::from_secs(3600);
/// Delivered events are kept this long, then deleted.
pub const DELIVERED_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest wait between two attempts of a retryable failure.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Events claimed (and delivered concurrently) per pass.
const BATCH: i64 = 32;
/// Users whose entitlements may have ended by time alone, checked per pass.
const DUE_USERS: i64 = 100;
/// The wait between passes when nothing was due.
const IDLE: Duration = Duration::from_millis(500);
/// How often delivered events past retention are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Events written because an entitlement ended by time alone.
    pub expired: u32,
    pub delivered: u32,
    pub retried: u32,
    pub refused: u32,
}

impl Pass {
    /// Events this pass attempted.
    pub fn attempted(&self) -> u32 {
        self.delivered + self.retried + self.refused
    }
}

/// The outbox's dispatcher: one per process that runs jobs; any number may run at once.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    db: Db,
    clock: Clock,
    events: AppEvents,
    url: String,
    secrets: Vec<WebhookSecret>,
    client: reqwest::Client,
    timeout: Duration,
}

impl Dispatcher {
    /// The dispatcher of these services; `None` when `APP_EVENTS_URL` is unset.
    pub fn from_services(services: &Services) -> Option<Self> {
        let app = &services.settings.app;
        let url = app.events_url.clone()?;
        Some(Self {
            db: services.db.clone(),
            clock: services.clock.clone(),
            events: services.events,
            url,
            secrets: app.webhook_secrets.clone(),
            client: outbound::client(),
            timeout: TIMEOUT,
        })
    }

    /// The same dispatcher with a shorter delivery timeout (tests of slow receivers).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// One pass: entitlements that ended by time alone, then one batch of due events.
    pub async fn run_once(&self) -> Result<Pass, StoreError> {
        let mut pass = Pass {
            expired: self.check_due_users().await?,
            ..Pass::default()
        };
        let now = self.clock.now();
        let lease_until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
        let claimed = self.db.claim_app_events(now, lease_until, BATCH).await?;
        let mut deliveries = JoinSet::new();
        for event in claimed {
            let this = self.clone();
            deliveries.spawn(async move {
                let outcome = this.deliver(&event).await;
                (event, outcome)
            });
        }
        let mut delivered = Vec::new();
        while let Some(joined) = deliveries.join_next().await {
            let Ok((event, outcome)) = joined else {
                continue;
            };
            if let Outcome::Delivered { .. } = outcome {
                delivered.push(event);
            } else {
                self.record_failure(&event, &outcome, &mut pass).await?;
            }
        }
        let ids: Vec<String> = delivered.iter().map(|e| e.id.clone()).collect();
        self.db.app_events_delivered(&ids, self.clock.now()).await?;
        for event in &delivered {
            crate::metrics::global()
                .app_events
                .inc(&[&event.event_type, "delivered"]);
        }
        pass.delivered += delivered.len() as u32;
        let backlog = self.db.app_events_backlog().await?;
        crate::metrics::global()
            .app_events_backlog
            .set(&[], backlog);
        Ok(pass)
    }

    /// Passes until `stop` turns true; waits a little when nothing was due.
    pub fn spawn(self, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut pruned = Instant::now() - PRUNE_EVERY;
            while !*stop.borrow() {
                if pruned.elapsed() >= PRUNE_EVERY {
                    pruned = Instant::now();
                    self.prune().await;
                }
                let busy = match self.run_once().await {
                    Ok(pass) => pass.attempted() > 0,
                    Err(e) => {
                        tracing::warn!(error = %e, "app events: a dispatch pass failed");
                        false
                    }
                };
                if !busy {
                    tokio::select! {
                        () = tokio::time::sleep(IDLE) => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        })
    }

    /// Deletes delivered events past [`DELIVERED_RETENTION`].
    pub async fn prune(&self) {
        let retention = chrono::Duration::from_std(DELIVERED_RETENTION).unwrap_or_default();
        match self.db.prune_app_events(self.clock.now() - retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "delivered app events pruned"),
            Err(e) => tracing::warn!(error = %e, "app events: pruning failed"),
        }
    }

    async fn check_due_users(&self) -> Result<u32, StoreError> {
        let users = self.db.event_users_due(self.clock.now(), DUE_USERS).await?;
        let mut written = 0;
        for user in &users {
            let mut tx = self.db.begin().await?;
            written +=
                check_entitlements(self.events, &mut tx, [user.as_str()], self.clock.now()).await?;
            tx.commit().await?;
        }
        Ok(written)
    }

    async fn deliver(&self, event: &AppEventRow) -> Outcome {
        let data = serde_json::from_str(&event.data).unwrap_or_default();
        let envelope = Envelope {
            id: &event.id,
            event_type: &event.event_type,
            created_at: event.created_at,
            user_id: &event.user_id,
            sequence: event.sequence,
            data,
        };
        let body = match serde_json::to_vec(&envelope) {
            Ok(body) => body,
            Err(e) => {
                return Outcome::Refused {
                    error: format!("the event could not be encoded: {e}"),
                }
            }
        };
        let message = Message {
            url: &self.url,
            id: &event.id,
            body: &body,
            timeout: self.timeout,
        };
        outbound::deliver(&self.client, &self.secrets, message, self.clock.now()).await
    }

    async fn record_failure(
        &self,
        event: &AppEventRow,
        outcome: &Outcome,
        pass: &mut Pass,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let counter = &crate::metrics::global().app_events;
        match outcome {
            Outcome::Delivered { .. } => {}
            Outcome::Retry { error, retry_after } => {
                let wait = retry_after.unwrap_or_else(|| backoff(event.attempts));
                self.db
                    .app_event_failed(&event.id, later(now, wait), error)
                    .await?;
                counter.inc(&[&event.event_type, "retry"]);
                pass.retried += 1;
            }
            Outcome::Refused { error } => {
                tracing::warn!(
                    id = %event.id,
                    event_type = %event.event_type,
                    error = %error,
                    "the app refused an event; it is tried again in an hour"
                );
                self.db
                    .app_event_failed(&event.id, later(now, REFUSED_BACKOFF), error)
                    .await?;
                counter.inc(&[&event.event_type, "refused"]);
                pass.refused += 1;
            }
        }
        Ok(())
    }
}

/// The wait after `attempts` failed attempts: 1 s, 2 s, 4 s, … up to an hour.
pub fn backoff(attempts: i32) -> Duration {
    let doublings = attempts.clamp(1, 13) as u32 - 1;
    Duration::from_secs(1u64 << doublings).min(MAX_BACKOFF)
}

fn later(now: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(wait).unwrap_or_else(|_| chrono::Duration::hours(24))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(16));
        assert_eq!(backoff(13), Duration::from_secs(3600));
        assert_eq!(backoff(1000), Duration::from_secs(3600));
        assert_eq!(backoff(0), Duration::from_secs(1));
    }
}
