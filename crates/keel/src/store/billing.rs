//! Billing rows: provider events, links, transfers, subscriptions and manual overrides.

use chrono::{DateTime, Utc};

use super::tx::Tx;
use super::{postgres, sqlite, Db, StoreError};
use crate::billing::entitlements::{Holdings, Override};
use crate::billing::model::{Provider, SubscriptionState};

/// A provider event as stored: the projection in clear, the raw payload sealed.
#[derive(Debug, Clone)]
pub struct EventRow<'a> {
    pub provider: Provider,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub user_id: Option<&'a str>,
    pub product_id: Option<&'a str>,
    pub environment: &'a str,
    pub event_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub outcome: &'a str,
    pub key_id: &'a str,
    pub payload: &'a [u8],
}

/// A subscription's owner fields, for re-resolving who holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    pub key: String,
    pub subject: String,
    pub user_id: Option<String>,
    pub product_id: String,
    pub environment: String,
    pub state_at: DateTime<Utc>,
}

/// A sealed payload, for re-sealing under a newer key.
#[derive(Debug, Clone)]
pub struct SealedPayload {
    pub provider: String,
    pub event_id: String,
    pub payload: Vec<u8>,
}

/// The projection of a stored event (no payload).
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventSummary {
    pub provider: String,
    pub event_id: String,
    pub event_type: String,
    pub user_id: Option<String>,
    pub product_id: Option<String>,
    pub environment: String,
    pub event_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub outcome: String,
}

macro_rules! on_tx {
    ($tx:expr, $f:ident $(, $arg:expr)*) => {
        match $tx {
            Tx::Sqlite(tx) => sqlite::billing::$f(&mut *tx $(, $arg)*).await,
            Tx::Postgres(tx) => postgres::billing::$f(&mut *tx $(, $arg)*).await,
        }
    };
}

impl Tx {
    /// Stores the event; false when the provider already delivered this id.
    pub async fn insert_billing_event(&mut self, row: &EventRow<'_>) -> Result<bool, StoreError> {
        Ok(on_tx!(self, insert_event, row)?)
    }

    /// Serializes changes about one provider-side owner until the transaction ends (Postgres).
    pub async fn lock_billing_subject(
        &mut self,
        provider: Provider,
        subject: &str,
    ) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(_) => Ok(()),
            Tx::Postgres(tx) => {
                Ok(postgres::billing::lock_subject(&mut *tx, provider, subject).await?)
            }
        }
    }

    pub async fn billing_link(
        &mut self,
        provider: Provider,
        external_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(on_tx!(self, link_of, provider, external_id)?)
    }

    /// Links a provider-side id to a user; the first link of an id stays.
    pub async fn insert_billing_link(
        &mut self,
        provider: Provider,
        external_id: &str,
        user_id: &str,
    ) -> Result<(), StoreError> {
        Ok(on_tx!(self, insert_link, provider, external_id, user_id)?)
    }

    /// The owner fields of one subscription, when it exists.
    pub async fn subscription_ownership(
        &mut self,
        provider: Provider,
        key: &str,
    ) -> Result<Option<Ownership>, StoreError> {
        Ok(on_tx!(self, ownership, provider, key)?)
    }

    /// Writes `state` unless the stored state is newer (by rank, time, event id). True when written.
    #[allow(clippy::too_many_arguments)]
    pub async fn upsert_subscription(
        &mut self,
        provider: Provider,
        state: &SubscriptionState,
        user_id: Option<&str>,
        at: DateTime<Utc>,
        event_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(on_tx!(
            self,
            upsert_subscription,
            provider,
            state,
            user_id,
            at,
            event_id,
            now
        )?)
    }

    /// Raises the paid-through time of a subscription, creating a placeholder that grants
    /// nothing when its state has not arrived yet.
    pub async fn raise_paid_through(
        &mut self,
        provider: Provider,
        placeholder: &SubscriptionState,
        user_id: Option<&str>,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Ok(on_tx!(
            self,
            raise_paid_through,
            provider,
            placeholder,
            user_id,
            until,
            now
        )?)
    }

    pub async fn insert_billing_transfer(
        &mut self,
        provider: Provider,
        event_id: &str,
        from: &str,
        to: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Ok(on_tx!(
            self,
            insert_transfer,
            provider,
            event_id,
            from,
            to,
            at
        )?)
    }

    /// The first transfer away from `user` after `after`.
    pub async fn next_billing_transfer(
        &mut self,
        provider: Provider,
        user: &str,
        after: DateTime<Utc>,
    ) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        Ok(on_tx!(self, next_transfer, provider, user, after)?)
    }

    /// Subscriptions whose subject or owner is one of `ids`.
    pub async fn subscriptions_touching(
        &mut self,
        provider: Provider,
        ids: &[String],
    ) -> Result<Vec<Ownership>, StoreError> {
        Ok(on_tx!(self, touching, provider, ids)?)
    }

    pub async fn set_subscription_owner(
        &mut self,
        provider: Provider,
        key: &str,
        user_id: Option<&str>,
    ) -> Result<(), StoreError> {
        Ok(on_tx!(self, set_owner, provider, key, user_id)?)
    }

    /// Records a manual grant or revocation, replacing the previous one.
    pub async fn set_entitlement_override(
        &mut self,
        user_id: &str,
        o: &Override,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Ok(on_tx!(self, set_override, user_id, o, actor, now)?)
    }

    /// Sealed payloads not sealed under `current_key`, oldest first.
    pub async fn payloads_not_under(
        &mut self,
        current_key: &str,
        limit: i64,
    ) -> Result<Vec<SealedPayload>, StoreError> {
        Ok(on_tx!(self, payloads_not_under, current_key, limit)?)
    }

    pub async fn replace_payload(
        &mut self,
        provider: &str,
        event_id: &str,
        key_id: &str,
        payload: &[u8],
    ) -> Result<(), StoreError> {
        Ok(on_tx!(
            self,
            replace_payload,
            provider,
            event_id,
            key_id,
            payload
        )?)
    }
}

impl Db {
    /// The subscriptions and overrides of one user.
    pub async fn holdings(&self, user_id: &str) -> Result<Holdings, StoreError> {
        Ok(match self {
            Db::Sqlite(pool) => sqlite::billing::holdings(pool, user_id).await?,
            Db::Postgres(pool) => postgres::billing::holdings(pool, user_id).await?,
        })
    }

    /// One stored event's projection and sealed payload.
    pub async fn billing_event(
        &self,
        provider: Provider,
        event_id: &str,
    ) -> Result<Option<(EventSummary, Option<Vec<u8>>)>, StoreError> {
        Ok(match self {
            Db::Sqlite(pool) => sqlite::billing::event(pool, provider, event_id).await?,
            Db::Postgres(pool) => postgres::billing::event(pool, provider, event_id).await?,
        })
    }
}

impl Db {
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
            deleted += match self {
                Db::Sqlite(pool) => sqlx::query(&format!(
                    "DELETE FROM {table} WHERE {column} LIKE ?1 ESCAPE '\\'"
                ))
                .bind(&pattern)
                .execute(pool)
                .await?
                .rows_affected(),
                Db::Postgres(pool) => sqlx::query(&format!(
                    "DELETE FROM {table} WHERE {column} LIKE $1 ESCAPE '\\'"
                ))
                .bind(&pattern)
                .execute(pool)
                .await?
                .rows_affected(),
            };
        }
        Ok(deleted)
    }
}

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

impl Db {
    /// Deliveries per provider and outcome received since `since`.
    pub async fn webhook_stats(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<WebhookStat>, StoreError> {
        use sqlx::Row;
        let rows = match self {
            Db::Sqlite(pool) => sqlx::query(
                "SELECT provider, outcome, count(*) AS events, max(received_at) AS last,
                    CAST(avg(received_at - event_at) AS REAL) AS avg_lag,
                    CAST(max(received_at - event_at) AS REAL) AS max_lag
                 FROM billing_events WHERE received_at >= ?1
                 GROUP BY provider, outcome ORDER BY provider, outcome",
            )
            .bind(since.timestamp_millis())
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok(WebhookStat {
                    provider: r.try_get("provider")?,
                    outcome: r.try_get("outcome")?,
                    events: r.try_get("events")?,
                    last_received_at: r
                        .try_get::<Option<i64>, _>("last")?
                        .and_then(DateTime::<Utc>::from_timestamp_millis),
                    avg_lag_ms: r.try_get("avg_lag")?,
                    max_lag_ms: r.try_get("max_lag")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?,
            Db::Postgres(pool) => sqlx::query(
                "SELECT provider, outcome, count(*) AS events, max(received_at) AS last,
                    (avg(EXTRACT(EPOCH FROM received_at - event_at)) * 1000)::float8 AS avg_lag,
                    (max(EXTRACT(EPOCH FROM received_at - event_at)) * 1000)::float8 AS max_lag
                 FROM billing_events WHERE received_at >= $1
                 GROUP BY provider, outcome ORDER BY provider, outcome",
            )
            .bind(since)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok(WebhookStat {
                    provider: r.try_get("provider")?,
                    outcome: r.try_get("outcome")?,
                    events: r.try_get("events")?,
                    last_received_at: r.try_get("last")?,
                    avg_lag_ms: r.try_get("avg_lag")?,
                    max_lag_ms: r.try_get("max_lag")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?,
        };
        Ok(rows)
    }
}

/// Which stored events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub provider: Option<String>,
    pub user_id: Option<String>,
    pub event_type: Option<String>,
    pub limit: i64,
}

impl Db {
    /// Stored events (projection only), newest received first.
    pub async fn billing_events(&self, f: &EventFilter) -> Result<Vec<EventSummary>, StoreError> {
        use sqlx::Row;
        const COLUMNS: &str = "provider, event_id, event_type, user_id, product_id, environment,
            event_at, received_at, outcome";
        let summary = |r: &dyn Fn(&str) -> Result<Option<String>, sqlx::Error>,
                       event_at: DateTime<Utc>,
                       received_at: DateTime<Utc>|
         -> Result<EventSummary, sqlx::Error> {
            Ok(EventSummary {
                provider: r("provider")?.unwrap_or_default(),
                event_id: r("event_id")?.unwrap_or_default(),
                event_type: r("event_type")?.unwrap_or_default(),
                user_id: r("user_id")?,
                product_id: r("product_id")?,
                environment: r("environment")?.unwrap_or_default(),
                event_at,
                received_at,
                outcome: r("outcome")?.unwrap_or_default(),
            })
        };
        Ok(match self {
            Db::Sqlite(pool) => sqlx::query(&format!(
                "SELECT {COLUMNS} FROM billing_events
                 WHERE (?1 IS NULL OR provider = ?1) AND (?2 IS NULL OR user_id = ?2)
                   AND (?3 IS NULL OR event_type = ?3)
                 ORDER BY received_at DESC, event_id LIMIT ?4"
            ))
            .bind(&f.provider)
            .bind(&f.user_id)
            .bind(&f.event_type)
            .bind(f.limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| {
                let time = |c: &str| -> Result<DateTime<Utc>, sqlx::Error> {
                    Ok(super::jobs::from_ts(row.try_get(c)?))
                };
                summary(&|c| row.try_get(c), time("event_at")?, time("received_at")?)
            })
            .collect::<Result<Vec<_>, _>>()?,
            Db::Postgres(pool) => sqlx::query(&format!(
                "SELECT {COLUMNS} FROM billing_events
                 WHERE ($1::text IS NULL OR provider = $1) AND ($2::text IS NULL OR user_id = $2)
                   AND ($3::text IS NULL OR event_type = $3)
                 ORDER BY received_at DESC, event_id LIMIT $4"
            ))
            .bind(&f.provider)
            .bind(&f.user_id)
            .bind(&f.event_type)
            .bind(f.limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| {
                summary(
                    &|c| row.try_get(c),
                    row.try_get("event_at")?,
                    row.try_get("received_at")?,
                )
            })
            .collect::<Result<Vec<_>, _>>()?,
        })
    }
}
