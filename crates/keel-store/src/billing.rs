//! Billing rows: provider events, links, transfers, subscriptions and manual overrides. One
//! statement text serves both engines; the reads are in `billing_reads.rs`.

use chrono::{DateTime, Utc};

use super::sql::{map_rows, on_tx, Cols, Ts};
use super::{postgres, StoreError, Tx};
use keel_domain::billing::entitlements::Override;
use keel_domain::billing::model::{Provider, SubscriptionState};

pub use super::billing_reads::{EventFilter, WebhookStat};

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

const INSERT_EVENT: &str = "INSERT INTO billing_events (provider, event_id, event_type, user_id,
        product_id, environment, event_at, received_at, outcome, key_id, payload)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (provider, event_id) DO NOTHING";

const OWNERSHIP: &str = "SELECT key, subject, user_id, product_id, environment, state_at
     FROM subscriptions";

const NEWER: &str = "(excluded.state_rank, excluded.state_at, excluded.state_event)
    >= (subscriptions.state_rank, subscriptions.state_at, subscriptions.state_event)";
const TAKE_GRACE: &str = "excluded.grace_at IS NOT NULL AND (subscriptions.grace_at IS NULL
    OR excluded.grace_at > subscriptions.grace_at
    OR (excluded.grace_at = subscriptions.grace_at AND excluded.grace_until > subscriptions.grace_until))";
const LATER_RESET: &str = "excluded.reset_at IS NOT NULL
    AND (subscriptions.reset_at IS NULL OR excluded.reset_at > subscriptions.reset_at)";

/// A placeholder grants nothing and ranks below any state (`$11` is the epoch); the paid-through
/// time only rises.
const RAISE_PAID_THROUGH: &str = "INSERT INTO subscriptions (provider, key, user_id, subject,
        environment, platform, product_id, entitlements, grants, expires_at, grace_until,
        paid_through, will_renew, state_rank, state_at, state_event, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, false, NULL, NULL, $9, false, -1, $11, '', $10)
     ON CONFLICT (provider, key) DO UPDATE SET
        paid_through = CASE WHEN subscriptions.paid_through IS NULL
            OR excluded.paid_through > subscriptions.paid_through
            THEN excluded.paid_through ELSE subscriptions.paid_through END,
        updated_at = excluded.updated_at";

const INSERT_TRANSFER: &str = "INSERT INTO billing_transfers (provider, event_id, from_user,
        to_user, event_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";

const NEXT_TRANSFER: &str = "SELECT to_user, event_at FROM billing_transfers
     WHERE provider = $1 AND from_user = $2 AND event_at > $3
     ORDER BY event_at, event_id LIMIT 1";

const SET_OVERRIDE: &str = "INSERT INTO entitlement_overrides (user_id, entitlement, revoked,
        expires_at, reason, actor, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (user_id, entitlement) DO UPDATE SET revoked = excluded.revoked,
        expires_at = excluded.expires_at, reason = excluded.reason,
        actor = excluded.actor, created_at = excluded.created_at";

/// The state of the newest event wins, field by field (the same event applied again, as a replay
/// does, writes its state again). The grace period is the one named by the
/// newest event that names one (a cancellation sent with a billing issue does not repeat it), and
/// the newest recovery (a renewal, an active status) is kept beside it: a grace period named
/// before the last recovery is over. Each merge is a maximum, so the order of events is
/// irrelevant.
fn upsert_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(build_upsert_sql)
}

fn build_upsert_sql() -> String {
    format!(
        "INSERT INTO subscriptions (provider, key, user_id, subject, environment, platform,
            product_id, entitlements, grants, expires_at, grace_until, paid_through,
            will_renew, state_rank, state_at, state_event, updated_at, grace_at, reset_at, tenant_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12, $13, $14, $15, $16,
            $17, $18, $19)
         {}",
        subscription_merge()
    )
}

/// The `ON CONFLICT` clause of a subscription write: how a state merges into the stored one (see
/// [`upsert_sql`]). The fused Postgres ingestion writes subscriptions with the same clause.
pub(crate) fn subscription_merge() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(build_subscription_merge)
}

fn build_subscription_merge() -> String {
    let newest = |column: &str| {
        format!(
            "{column} = CASE WHEN {NEWER} THEN excluded.{column} ELSE subscriptions.{column} END"
        )
    };
    let columns = [
        "user_id",
        "subject",
        "environment",
        "platform",
        "product_id",
        "entitlements",
        "grants",
        "expires_at",
        "will_renew",
        "state_rank",
        "state_at",
        "state_event",
        "tenant_id",
    ];
    let set: Vec<String> = columns.iter().map(|c| newest(c)).collect();
    format!(
        "ON CONFLICT (provider, key) DO UPDATE SET {},
            grace_until = CASE WHEN {TAKE_GRACE} THEN excluded.grace_until ELSE subscriptions.grace_until END,
            grace_at = CASE WHEN {TAKE_GRACE} THEN excluded.grace_at ELSE subscriptions.grace_at END,
            reset_at = CASE WHEN {LATER_RESET} THEN excluded.reset_at ELSE subscriptions.reset_at END,
            updated_at = excluded.updated_at",
        set.join(", ")
    )
}

/// The subscriptions of `provider` (`$1`) whose subject or owner is one of `n` ids (`$2`…).
fn touching_sql(n: usize) -> String {
    let ids: Vec<String> = (2..n + 2).map(|i| format!("${i}")).collect();
    let ids = ids.join(", ");
    format!("{OWNERSHIP} WHERE provider = $1 AND (subject IN ({ids}) OR user_id IN ({ids})) ORDER BY key")
}

/// Entitlement names as stored (a JSON array in a text column).
pub(crate) fn names(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

fn ownership(r: &impl Cols) -> Result<Ownership, sqlx::Error> {
    Ok(Ownership {
        key: r.text("key")?,
        subject: r.text("subject")?,
        user_id: r.text_opt("user_id")?,
        product_id: r.text("product_id")?,
        environment: r.text("environment")?,
        state_at: r.at("state_at")?,
    })
}

fn sealed_payload(r: &impl Cols) -> Result<SealedPayload, sqlx::Error> {
    Ok(SealedPayload {
        provider: r.text("provider")?,
        event_id: r.text("event_id")?,
        payload: r.bytes("payload")?,
    })
}

impl Tx {
    /// Stores the event; false when the provider already delivered this id.
    pub async fn insert_billing_event(&mut self, row: &EventRow<'_>) -> Result<bool, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query(INSERT_EVENT)
            .bind(row.provider.as_str())
            .bind(row.event_id)
            .bind(row.event_type)
            .bind(row.user_id)
            .bind(row.product_id)
            .bind(row.environment)
            .bind(Ts(row.event_at))
            .bind(Ts(row.received_at))
            .bind(row.outcome)
            .bind(row.key_id)
            .bind(row.payload)
            .execute(&mut **c)
            .await?
            .rows_affected()
            == 1))
    }

    /// Serializes changes about one provider-side owner until the transaction ends. Postgres
    /// takes a transaction-scoped advisory lock; a SQLite transaction already holds the only
    /// writer's lock.
    pub async fn lock_billing_subject(
        &mut self,
        provider: Provider,
        subject: &str,
    ) -> Result<(), StoreError> {
        if let Tx::Postgres(c) = self {
            let name = postgres::billing_lock_name(provider, subject);
            postgres::lock_until_commit(c, &name).await?;
        }
        Ok(())
    }

    pub async fn billing_link(
        &mut self,
        provider: Provider,
        external_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let q = "SELECT user_id FROM billing_links WHERE provider = $1 AND external_id = $2";
        Ok(on_tx!(self, |c| sqlx::query(q)
            .bind(provider.as_str())
            .bind(external_id)
            .fetch_optional(&mut **c)
            .await?
            .map(|r| r.text("user_id"))
            .transpose())?)
    }

    /// Links a provider-side id to a user; the first link of an id stays.
    pub async fn insert_billing_link(
        &mut self,
        provider: Provider,
        external_id: &str,
        user_id: &str,
    ) -> Result<(), StoreError> {
        let q = "INSERT INTO billing_links (provider, external_id, user_id) VALUES ($1, $2, $3)
                 ON CONFLICT (provider, external_id) DO NOTHING";
        on_tx!(self, |c| {
            sqlx::query(q)
                .bind(provider.as_str())
                .bind(external_id)
                .bind(user_id)
                .execute(&mut **c)
                .await?;
        });
        Ok(())
    }

    /// The owner fields of one subscription, when it exists.
    pub async fn subscription_ownership(
        &mut self,
        provider: Provider,
        key: &str,
    ) -> Result<Option<Ownership>, StoreError> {
        let q = format!("{OWNERSHIP} WHERE provider = $1 AND key = $2");
        Ok(on_tx!(self, |c| sqlx::query(&q)
            .bind(provider.as_str())
            .bind(key)
            .fetch_optional(&mut **c)
            .await?
            .map(|r| ownership(&r))
            .transpose())?)
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
        let s = state;
        Ok(on_tx!(self, |c| sqlx::query(upsert_sql())
            .bind(provider.as_str())
            .bind(&s.key)
            .bind(user_id)
            .bind(&s.subject)
            .bind(s.environment.as_str())
            .bind(&s.platform)
            .bind(&s.product_id)
            .bind(names(&s.entitlements))
            .bind(s.grants)
            .bind(s.expires_at.map(Ts))
            .bind(s.grace_until.map(Ts))
            .bind(s.will_renew)
            .bind(s.rank)
            .bind(Ts(at))
            .bind(event_id)
            .bind(Ts(now))
            .bind(s.grace_until.map(|_| Ts(at)))
            .bind(s.recovered.then_some(Ts(at)))
            .bind(s.tenant.as_deref())
            .execute(&mut **c)
            .await?
            .rows_affected()
            == 1))
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
        let s = placeholder;
        on_tx!(self, |c| {
            sqlx::query(RAISE_PAID_THROUGH)
                .bind(provider.as_str())
                .bind(&s.key)
                .bind(user_id)
                .bind(&s.subject)
                .bind(s.environment.as_str())
                .bind(&s.platform)
                .bind(&s.product_id)
                .bind(names(&s.entitlements))
                .bind(Ts(until))
                .bind(Ts(now))
                .bind(Ts(DateTime::UNIX_EPOCH))
                .execute(&mut **c)
                .await?;
        });
        Ok(())
    }

    pub async fn insert_billing_transfer(
        &mut self,
        provider: Provider,
        event_id: &str,
        from: &str,
        to: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| {
            sqlx::query(INSERT_TRANSFER)
                .bind(provider.as_str())
                .bind(event_id)
                .bind(from)
                .bind(to)
                .bind(Ts(at))
                .execute(&mut **c)
                .await?;
        });
        Ok(())
    }

    /// The first transfer away from `user` after `after`.
    pub async fn next_billing_transfer(
        &mut self,
        provider: Provider,
        user: &str,
        after: DateTime<Utc>,
    ) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query(NEXT_TRANSFER)
            .bind(provider.as_str())
            .bind(user)
            .bind(Ts(after))
            .fetch_optional(&mut **c)
            .await?
            .map(|r| Ok::<_, sqlx::Error>((r.text("to_user")?, r.at("event_at")?)))
            .transpose())?)
    }

    /// Subscriptions whose subject or owner is one of `ids`.
    pub async fn subscriptions_touching(
        &mut self,
        provider: Provider,
        ids: &[String],
    ) -> Result<Vec<Ownership>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let q = touching_sql(ids.len());
        Ok(on_tx!(self, |c| {
            let mut query = sqlx::query(&q).bind(provider.as_str());
            for id in ids {
                query = query.bind(id);
            }
            map_rows(&query.fetch_all(&mut **c).await?, ownership)
        })?)
    }

    pub async fn set_subscription_owner(
        &mut self,
        provider: Provider,
        key: &str,
        user_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let q = "UPDATE subscriptions SET user_id = $3 WHERE provider = $1 AND key = $2";
        on_tx!(self, |c| {
            sqlx::query(q)
                .bind(provider.as_str())
                .bind(key)
                .bind(user_id)
                .execute(&mut **c)
                .await?;
        });
        Ok(())
    }

    /// Records a manual grant or revocation, replacing the previous one.
    pub async fn set_entitlement_override(
        &mut self,
        user_id: &str,
        o: &Override,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| {
            sqlx::query(SET_OVERRIDE)
                .bind(user_id)
                .bind(&o.entitlement)
                .bind(o.revoked)
                .bind(o.expires_at.map(Ts))
                .bind(&o.reason)
                .bind(actor)
                .bind(Ts(now))
                .execute(&mut **c)
                .await?;
        });
        Ok(())
    }

    /// Sealed payloads not sealed under `current_key`, oldest first.
    pub async fn payloads_not_under(
        &mut self,
        current_key: &str,
        limit: i64,
    ) -> Result<Vec<SealedPayload>, StoreError> {
        let q = "SELECT provider, event_id, payload FROM billing_events
                 WHERE payload IS NOT NULL AND key_id <> $1 ORDER BY received_at LIMIT $2";
        Ok(on_tx!(self, |c| map_rows(
            &sqlx::query(q)
                .bind(current_key)
                .bind(limit)
                .fetch_all(&mut **c)
                .await?,
            sealed_payload
        ))?)
    }

    pub async fn replace_payload(
        &mut self,
        provider: &str,
        event_id: &str,
        key_id: &str,
        payload: &[u8],
    ) -> Result<(), StoreError> {
        let q = "UPDATE billing_events SET key_id = $3, payload = $4
                 WHERE provider = $1 AND event_id = $2";
        on_tx!(self, |c| {
            sqlx::query(q)
                .bind(provider)
                .bind(event_id)
                .bind(key_id)
                .bind(payload)
                .execute(&mut **c)
                .await?;
        });
        Ok(())
    }
}
