//! Reads of billing rows outside a transaction: a user's holdings, stored events, webhook
//! delivery statistics; and the removal of benchmark users' rows.

use chrono::{DateTime, Utc};

use super::billing::EventSummary;
use super::sql::on_tx;
use super::sql::{map_rows, millis_between, on_db, Cols, Ts};
use super::{Db, StoreError, Tx};
use keel_domain::billing::entitlements::{Holding, Holdings, Override};
use keel_domain::billing::model::{Environment, Provider};

/// Webhook deliveries of one provider with one outcome since some time.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WebhookStat {
    pub provider: String,
    pub outcome: String,
    pub events: i64,
    pub last_received_at: Option<DateTime<Utc>>,
    /// Mean and longest time from the provider's event time to Keel storing it.
    pub avg_lag_ms: Option<f64>,
    pub max_lag_ms: Option<f64>,
}

/// Which stored events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub provider: Option<String>,
    pub user_id: Option<String>,
    pub event_type: Option<String>,
    pub event_id: Option<String>,
    /// Only events received at or after this time.
    pub received_from: Option<DateTime<Utc>>,
    /// Only events received before this time.
    pub received_before: Option<DateTime<Utc>>,
    pub limit: i64,
}

const HOLDINGS: &str = "SELECT provider, environment, product_id, entitlements, grants,
        expires_at, grace_until, grace_at, reset_at, paid_through, will_renew
     FROM subscriptions WHERE user_id = $1 ORDER BY provider, key";

const OVERRIDES: &str = "SELECT entitlement, revoked, expires_at, reason
     FROM entitlement_overrides WHERE user_id = $1 ORDER BY entitlement";

const EVENT_COLUMNS: &str = "provider, event_id, event_type, user_id, product_id, environment,
        event_at, received_at, outcome";

fn holding(r: &impl Cols) -> Result<Holding, sqlx::Error> {
    let provider = r.text("provider")?;
    let entitlements = r.text("entitlements")?;
    Ok(Holding {
        provider: Provider::parse(&provider).unwrap_or(Provider::Manual),
        environment: Environment::parse(&r.text("environment")?),
        product_id: r.text("product_id")?,
        entitlements: serde_json::from_str(&entitlements).unwrap_or_default(),
        grants: r.flag("grants")?,
        expires_at: r.at_opt("expires_at")?,
        grace_until: live_grace(
            r.at_opt("grace_until")?,
            r.at_opt("grace_at")?,
            r.at_opt("reset_at")?,
        ),
        paid_through: r.at_opt("paid_through")?,
        will_renew: r.flag("will_renew")?,
    })
}

fn entitlement_override(r: &impl Cols) -> Result<Override, sqlx::Error> {
    Ok(Override {
        entitlement: r.text("entitlement")?,
        revoked: r.flag("revoked")?,
        expires_at: r.at_opt("expires_at")?,
        reason: r.text("reason")?,
    })
}

fn event_summary(r: &impl Cols) -> Result<EventSummary, sqlx::Error> {
    Ok(EventSummary {
        provider: r.text("provider")?,
        event_id: r.text("event_id")?,
        event_type: r.text("event_type")?,
        user_id: r.text_opt("user_id")?,
        product_id: r.text_opt("product_id")?,
        environment: r.text("environment")?,
        event_at: r.at("event_at")?,
        received_at: r.at("received_at")?,
        outcome: r.text("outcome")?,
    })
}

fn webhook_stat(r: &impl Cols) -> Result<WebhookStat, sqlx::Error> {
    Ok(WebhookStat {
        provider: r.text("provider")?,
        outcome: r.text("outcome")?,
        events: r.int("events")?,
        last_received_at: r.at_opt("last")?,
        avg_lag_ms: r.float_opt("avg_lag")?,
        max_lag_ms: r.float_opt("max_lag")?,
    })
}

/// The grace end, unless a recovery came after the event that named it.
fn live_grace(
    until: Option<DateTime<Utc>>,
    at: Option<DateTime<Utc>>,
    reset: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    match (at, reset) {
        (Some(at), Some(reset)) if reset > at => None,
        _ => until,
    }
}

impl Tx {
    /// The subscriptions and overrides of one user, as this transaction sees them.
    pub async fn holdings(&mut self, user_id: &str) -> Result<Holdings, StoreError> {
        Ok(on_tx!(self, |c| Holdings {
            subscriptions: map_rows(
                &sqlx::query(HOLDINGS)
                    .bind(user_id)
                    .fetch_all(&mut **c)
                    .await?,
                holding
            )?,
            overrides: map_rows(
                &sqlx::query(OVERRIDES)
                    .bind(user_id)
                    .fetch_all(&mut **c)
                    .await?,
                entitlement_override
            )?,
        }))
    }
}

impl Db {
    /// The subscriptions and overrides of one user.
    pub async fn holdings(&self, user_id: &str) -> Result<Holdings, StoreError> {
        Ok(on_db!(self, |p| Holdings {
            subscriptions: map_rows(
                &sqlx::query(HOLDINGS).bind(user_id).fetch_all(p).await?,
                holding
            )?,
            overrides: map_rows(
                &sqlx::query(OVERRIDES).bind(user_id).fetch_all(p).await?,
                entitlement_override
            )?,
        }))
    }

    /// Whether `user_id` holds a subscription of `provider` in `tenant_id` that grants access at
    /// `now` (its period or paid-through time not over).
    pub async fn holds_in_tenant(
        &self,
        provider: Provider,
        user_id: &str,
        tenant_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let q = "SELECT count(*) AS n FROM subscriptions
             WHERE provider = $1 AND user_id = $2 AND tenant_id = $3 AND grants = $4
               AND (expires_at IS NULL OR expires_at > $5 OR paid_through > $5)";
        let n = on_db!(self, |p| sqlx::query(q)
            .bind(provider.as_str())
            .bind(user_id)
            .bind(tenant_id)
            .bind(true)
            .bind(Ts(now))
            .fetch_one(p)
            .await?
            .int("n"))?;
        Ok(n > 0)
    }

    /// One stored event's projection and sealed payload.
    pub async fn billing_event(
        &self,
        provider: Provider,
        event_id: &str,
    ) -> Result<Option<(EventSummary, Option<Vec<u8>>)>, StoreError> {
        let q = format!(
            "SELECT {EVENT_COLUMNS}, payload FROM billing_events
             WHERE provider = $1 AND event_id = $2"
        );
        Ok(on_db!(self, |p| sqlx::query(&q)
            .bind(provider.as_str())
            .bind(event_id)
            .fetch_optional(p)
            .await?
            .map(|r| Ok::<_, sqlx::Error>((event_summary(&r)?, r.bytes_opt("payload")?)))
            .transpose())?)
    }

    /// Stored events (projection only), newest received first.
    pub async fn billing_events(&self, f: &EventFilter) -> Result<Vec<EventSummary>, StoreError> {
        let q = format!(
            "SELECT {EVENT_COLUMNS} FROM billing_events
             WHERE (CAST($1 AS TEXT) IS NULL OR provider = $1)
               AND (CAST($2 AS TEXT) IS NULL OR user_id = $2)
               AND (CAST($3 AS TEXT) IS NULL OR event_type = $3)
               AND (CAST($5 AS TEXT) IS NULL OR event_id = $5)
               AND received_at >= $6 AND received_at < $7
             ORDER BY received_at DESC, event_id LIMIT $4"
        );
        let from = f.received_from.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        // Some eight thousand years on: later than any event, within both engines' range.
        let never = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(365 * 8000);
        let before = f.received_before.unwrap_or(never);
        Ok(on_db!(self, |p| map_rows(
            &sqlx::query(&q)
                .bind(&f.provider)
                .bind(&f.user_id)
                .bind(&f.event_type)
                .bind(f.limit)
                .bind(&f.event_id)
                .bind(Ts(from))
                .bind(Ts(before))
                .fetch_all(p)
                .await?,
            event_summary
        ))?)
    }

    /// Deliveries per provider and outcome received since `since`.
    pub async fn webhook_stats(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<WebhookStat>, StoreError> {
        let lag = millis_between(self.engine(), "received_at", "event_at");
        let q = format!(
            "SELECT provider, outcome, count(*) AS events, max(received_at) AS last,
                CAST(avg({lag}) AS DOUBLE PRECISION) AS avg_lag,
                CAST(max({lag}) AS DOUBLE PRECISION) AS max_lag
             FROM billing_events WHERE received_at >= $1
             GROUP BY provider, outcome ORDER BY provider, outcome"
        );
        Ok(on_db!(self, |p| map_rows(
            &sqlx::query(&q).bind(Ts(since)).fetch_all(p).await?,
            webhook_stat
        ))?)
    }

    /// Deletes every billing row of the users whose id starts with `prefix` (benchmark data).
    pub async fn delete_billing_users(&self, prefix: &str) -> Result<u64, StoreError> {
        const TABLES: [(&str, &str); 4] = [
            ("billing_events", "user_id"),
            ("subscriptions", "subject"),
            ("billing_links", "user_id"),
            ("audit_log", "target"),
        ];
        let pattern = format!("{}%", prefix.replace('%', "").replace('_', "\\_"));
        let mut deleted = 0;
        for (table, column) in TABLES {
            let q = format!("DELETE FROM {table} WHERE {column} LIKE $1 ESCAPE '\\'");
            deleted += on_db!(self, |p| sqlx::query(&q)
                .bind(&pattern)
                .execute(p)
                .await?
                .rows_affected());
        }
        Ok(deleted)
    }
}
