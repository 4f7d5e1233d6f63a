//! The common webhook on Postgres in few round trips: the per-owner locks in one statement, then
//! the event row, the alias links, the subscription state and the audit row in one statement.
//!
//! The statements mean exactly what the step-by-step path (`billing.rs`) means, in the same order
//! of effects: the locks come first and in a statement of their own, so every read after them sees
//! whatever an earlier holder of the same locks committed; the event row gates every other write
//! (a provider's second delivery of an id writes nothing); the subscription merges through the same
//! `ON CONFLICT` clause; its owner follows later transfers exactly as the step path does, at most
//! [`MAX_TRANSFER_CHAIN`] of them. SQLite keeps the step path: its one writer makes round trips
//! cheap.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::billing::{names, subscription_merge, EventRow};
use super::sql::{Cols, Ts, Uid};
use super::{StoreError, Tx};
use keel_domain::audit::AuditEntry;
use keel_domain::billing::model::{Provider, SubscriptionState};

/// Transfers are followed at most this far (A to B to C ...), as the step path does.
pub const MAX_TRANSFER_CHAIN: usize = 16;

/// One event for [`Tx::ingest_billing_event`]: its row, what it links and writes, and its audit
/// row. Leave `links` empty and `subscription` unset for an event that is stored but not applied.
#[derive(Debug, Clone)]
pub struct FusedEvent<'a> {
    pub row: &'a EventRow<'a>,
    /// Provider-side ids linked to `link_user` (the first link of an id stays).
    pub links: &'a [&'a str],
    pub link_user: Option<&'a str>,
    /// The state written, whose owner is its subject followed through later transfers.
    pub subscription: Option<&'a SubscriptionState>,
    pub audit: &'a AuditEntry,
    pub now: DateTime<Utc>,
}

/// What [`Tx::ingest_billing_event`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FusedOutcome {
    /// This engine takes the step-by-step path; nothing was written.
    Unsupported,
    /// The provider already delivered this event id; nothing was written.
    Duplicate,
    /// Stored and applied: the subscription's owner before the write and after it.
    Stored {
        before_owner: Option<String>,
        owner: Option<String>,
    },
}

impl Tx {
    /// Takes the per-owner locks of `subjects`, in the order given, until the transaction ends:
    /// one statement on Postgres; a SQLite transaction already holds the only writer's lock.
    pub async fn lock_billing_subjects(
        &mut self,
        provider: Provider,
        subjects: &[&str],
    ) -> Result<(), StoreError> {
        let Tx::Postgres(c) = self else {
            return Ok(());
        };
        if subjects.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = subjects
            .iter()
            .map(|s| super::postgres::billing_lock_name(provider, s))
            .collect();
        // A function scan yields the array's elements in order, so the locks are taken in order.
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended(name, 7261))
             FROM unnest(CAST($1 AS TEXT[])) AS subject(name)",
        )
        .bind(&names)
        .fetch_all(&mut **c)
        .await?;
        Ok(())
    }

    /// Stores and applies `event` in one statement on Postgres (after
    /// [`Tx::lock_billing_subjects`]); [`FusedOutcome::Unsupported`] on SQLite.
    pub async fn ingest_billing_event(
        &mut self,
        provider: Provider,
        event: &FusedEvent<'_>,
    ) -> Result<FusedOutcome, StoreError> {
        let Tx::Postgres(c) = self else {
            return Ok(FusedOutcome::Unsupported);
        };
        let (row, s, a) = (event.row, event.subscription, event.audit);
        let links: Vec<&str> = match event.link_user {
            Some(_) => event.links.to_vec(),
            None => Vec::new(),
        };
        let r = sqlx::query(ingest_sql())
            .bind(provider.as_str())
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
            .bind(&links)
            .bind(event.link_user)
            .bind(s.map(|s| s.key.as_str()))
            .bind(s.map(|s| s.subject.as_str()))
            .bind(s.map(|s| s.environment.as_str()))
            .bind(s.map(|s| s.platform.as_str()))
            .bind(s.map(|s| s.product_id.as_str()))
            .bind(s.map(|s| names(&s.entitlements)))
            .bind(s.map(|s| s.grants))
            .bind(s.and_then(|s| s.expires_at).map(Ts))
            .bind(s.and_then(|s| s.grace_until).map(Ts))
            .bind(s.map(|s| s.will_renew))
            .bind(s.map(|s| s.rank))
            .bind(Ts(event.now))
            .bind(s.and_then(|s| s.grace_until.map(|_| Ts(row.event_at))))
            .bind(s.and_then(|s| s.recovered.then_some(Ts(row.event_at))))
            .bind(s.and_then(|s| s.tenant.as_deref()))
            .bind(Uid(uuid::Uuid::now_v7()))
            .bind(&a.actor)
            .bind(&a.action)
            .bind(&a.target)
            .bind(Json(&a.metadata))
            .fetch_one(&mut **c)
            .await?;
        let stored: bool = sqlx::Row::try_get(&r, "stored")?;
        if !stored {
            return Ok(FusedOutcome::Duplicate);
        }
        Ok(FusedOutcome::Stored {
            before_owner: r.text_opt("before_owner")?,
            owner: r.text_opt("owner")?,
        })
    }
}

/// The fused statement. `$1` provider; `$2`–`$11` the event row; `$12`, `$13` the links and
/// their user; `$14`–`$28` the subscription (`$14` its key, NULL when there is none); `$29`–`$33`
/// the audit row. Data-modifying parts all run on one snapshot taken after the locks; each write
/// runs only when the event row was inserted.
fn ingest_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "WITH RECURSIVE ev AS (
                INSERT INTO billing_events (provider, event_id, event_type, user_id, product_id,
                    environment, event_at, received_at, outcome, key_id, payload)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                ON CONFLICT (provider, event_id) DO NOTHING
                RETURNING 1
            ),
            links AS (
                INSERT INTO billing_links (provider, external_id, user_id)
                SELECT $1, alias.id, $13 FROM unnest(CAST($12 AS TEXT[])) AS alias(id)
                WHERE EXISTS (SELECT 1 FROM ev)
                ON CONFLICT (provider, external_id) DO NOTHING
            ),
            chain (step, user_id, since) AS (
                SELECT 0, CAST($15 AS TEXT), CAST($7 AS TIMESTAMPTZ) WHERE $14 IS NOT NULL
                UNION ALL
                SELECT chain.step + 1, next.to_user, next.event_at
                FROM chain, LATERAL (
                    SELECT to_user, event_at FROM billing_transfers
                    WHERE provider = $1 AND from_user = chain.user_id AND event_at > chain.since
                    ORDER BY event_at, event_id LIMIT 1
                ) AS next
                WHERE chain.step < {MAX_TRANSFER_CHAIN}
            ),
            owner AS (SELECT user_id FROM chain ORDER BY step DESC LIMIT 1),
            before AS (SELECT user_id FROM subscriptions WHERE provider = $1 AND key = $14),
            sub AS (
                INSERT INTO subscriptions (provider, key, user_id, subject, environment, platform,
                    product_id, entitlements, grants, expires_at, grace_until, paid_through,
                    will_renew, state_rank, state_at, state_event, updated_at, grace_at, reset_at,
                    tenant_id)
                SELECT $1, $14, (SELECT user_id FROM owner), $15, $16, $17, $18, $19, $20, $21,
                    $22, NULL, $23, $24, $7, $2, $25, $26, $27, $28
                WHERE $14 IS NOT NULL AND EXISTS (SELECT 1 FROM ev)
                {merge}
            ),
            audit AS (
                INSERT INTO audit_log (id, at, actor, action, target, metadata)
                SELECT $29, $25, $30, $31, $32, $33 WHERE EXISTS (SELECT 1 FROM ev)
            )
            SELECT EXISTS (SELECT 1 FROM ev) AS stored,
                (SELECT user_id FROM before) AS before_owner,
                (SELECT user_id FROM owner) AS owner",
            merge = subscription_merge()
        )
    })
}
