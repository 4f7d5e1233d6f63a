//! Billing rows on SQLite. Times are milliseconds since the epoch.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Executor, Row, SqliteConnection, SqlitePool};

use crate::billing::entitlements::{Holding, Holdings, Override};
use crate::billing::model::{Environment, Provider, SubscriptionState};
use crate::store::billing::{EventRow, EventSummary, Ownership, SealedPayload};
use crate::store::jobs::{from_ts, ts};

pub(crate) async fn insert_event(
    conn: &mut SqliteConnection,
    row: &EventRow<'_>,
) -> Result<bool, sqlx::Error> {
    let done = conn
        .execute(
            sqlx::query(
                "INSERT INTO billing_events (provider, event_id, event_type, user_id, product_id,
                    environment, event_at, received_at, outcome, key_id, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (provider, event_id) DO NOTHING",
            )
            .bind(row.provider.as_str())
            .bind(row.event_id)
            .bind(row.event_type)
            .bind(row.user_id)
            .bind(row.product_id)
            .bind(row.environment)
            .bind(ts(row.event_at))
            .bind(ts(row.received_at))
            .bind(row.outcome)
            .bind(row.key_id)
            .bind(row.payload),
        )
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn link_of(
    conn: &mut SqliteConnection,
    provider: Provider,
    external_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row = conn
        .fetch_optional(
            sqlx::query(
                "SELECT user_id FROM billing_links WHERE provider = ?1 AND external_id = ?2",
            )
            .bind(provider.as_str())
            .bind(external_id),
        )
        .await?;
    row.map(|r| r.try_get("user_id")).transpose()
}

pub(crate) async fn insert_link(
    conn: &mut SqliteConnection,
    provider: Provider,
    external_id: &str,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    conn.execute(
        sqlx::query(
            "INSERT INTO billing_links (provider, external_id, user_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (provider, external_id) DO NOTHING",
        )
        .bind(provider.as_str())
        .bind(external_id)
        .bind(user_id),
    )
    .await
    .map(|_| ())
}

fn ownership_of(r: &SqliteRow) -> Result<Ownership, sqlx::Error> {
    Ok(Ownership {
        key: r.try_get("key")?,
        subject: r.try_get("subject")?,
        user_id: r.try_get("user_id")?,
        product_id: r.try_get("product_id")?,
        environment: r.try_get("environment")?,
        state_at: from_ts(r.try_get("state_at")?),
    })
}

pub(crate) async fn ownership(
    conn: &mut SqliteConnection,
    provider: Provider,
    key: &str,
) -> Result<Option<Ownership>, sqlx::Error> {
    let row = conn
        .fetch_optional(
            sqlx::query(
                "SELECT key, subject, user_id, product_id, environment, state_at FROM subscriptions
                 WHERE provider = ?1 AND key = ?2",
            )
            .bind(provider.as_str())
            .bind(key),
        )
        .await?;
    row.as_ref().map(ownership_of).transpose()
}

fn names(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

const NEWER: &str = "(excluded.state_rank, excluded.state_at, excluded.state_event)
    >= (subscriptions.state_rank, subscriptions.state_at, subscriptions.state_event)";
const TAKE_GRACE: &str = "excluded.grace_at IS NOT NULL AND (subscriptions.grace_at IS NULL
    OR excluded.grace_at > subscriptions.grace_at
    OR (excluded.grace_at = subscriptions.grace_at AND excluded.grace_until > subscriptions.grace_until))";
const LATER_RESET: &str = "excluded.reset_at IS NOT NULL
    AND (subscriptions.reset_at IS NULL OR excluded.reset_at > subscriptions.reset_at)";

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
    ];
    let set: Vec<String> = columns.iter().map(|c| newest(c)).collect();
    format!(
        "INSERT INTO subscriptions (provider, key, user_id, subject, environment, platform,
            product_id, entitlements, grants, expires_at, grace_until, paid_through,
            will_renew, state_rank, state_at, state_event, updated_at, grace_at, reset_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, NULL, ?12, ?13, ?14, ?15, ?16,
            ?17, ?18)
         ON CONFLICT (provider, key) DO UPDATE SET {},
            grace_until = CASE WHEN {TAKE_GRACE} THEN excluded.grace_until ELSE subscriptions.grace_until END,
            grace_at = CASE WHEN {TAKE_GRACE} THEN excluded.grace_at ELSE subscriptions.grace_at END,
            reset_at = CASE WHEN {LATER_RESET} THEN excluded.reset_at ELSE subscriptions.reset_at END,
            updated_at = excluded.updated_at",
        set.join(", ")
    )
}

pub(crate) async fn upsert_subscription(
    conn: &mut SqliteConnection,
    provider: Provider,
    s: &SubscriptionState,
    user_id: Option<&str>,
    at: DateTime<Utc>,
    event_id: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = conn
        .execute(
            sqlx::query(upsert_sql())
                .bind(provider.as_str())
                .bind(&s.key)
                .bind(user_id)
                .bind(&s.subject)
                .bind(s.environment.as_str())
                .bind(&s.platform)
                .bind(&s.product_id)
                .bind(names(&s.entitlements))
                .bind(s.grants)
                .bind(s.expires_at.map(ts))
                .bind(s.grace_until.map(ts))
                .bind(s.will_renew)
                .bind(s.rank)
                .bind(ts(at))
                .bind(event_id)
                .bind(ts(now))
                .bind(s.grace_until.map(|_| ts(at)))
                .bind(s.recovered.then(|| ts(at))),
        )
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn raise_paid_through(
    conn: &mut SqliteConnection,
    provider: Provider,
    s: &SubscriptionState,
    user_id: Option<&str>,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    conn.execute(
        sqlx::query(
            "INSERT INTO subscriptions (provider, key, user_id, subject, environment, platform,
                product_id, entitlements, grants, expires_at, grace_until, paid_through,
                will_renew, state_rank, state_at, state_event, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, NULL, NULL, ?9, 0, -1, 0, '', ?10)
             ON CONFLICT (provider, key) DO UPDATE
                SET paid_through = max(COALESCE(subscriptions.paid_through, 0), excluded.paid_through),
                    updated_at = excluded.updated_at",
        )
        .bind(provider.as_str())
        .bind(&s.key)
        .bind(user_id)
        .bind(&s.subject)
        .bind(s.environment.as_str())
        .bind(&s.platform)
        .bind(&s.product_id)
        .bind(names(&s.entitlements))
        .bind(ts(until))
        .bind(ts(now)),
    )
    .await
    .map(|_| ())
}

pub(crate) async fn insert_transfer(
    conn: &mut SqliteConnection,
    provider: Provider,
    event_id: &str,
    from: &str,
    to: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    conn.execute(
        sqlx::query(
            "INSERT INTO billing_transfers (provider, event_id, from_user, to_user, event_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        )
        .bind(provider.as_str())
        .bind(event_id)
        .bind(from)
        .bind(to)
        .bind(ts(at)),
    )
    .await
    .map(|_| ())
}

pub(crate) async fn next_transfer(
    conn: &mut SqliteConnection,
    provider: Provider,
    user: &str,
    after: DateTime<Utc>,
) -> Result<Option<(String, DateTime<Utc>)>, sqlx::Error> {
    let row = conn
        .fetch_optional(
            sqlx::query(
                "SELECT to_user, event_at FROM billing_transfers
                 WHERE provider = ?1 AND from_user = ?2 AND event_at > ?3
                 ORDER BY event_at, event_id LIMIT 1",
            )
            .bind(provider.as_str())
            .bind(user)
            .bind(ts(after)),
        )
        .await?;
    row.map(|r| Ok((r.try_get("to_user")?, from_ts(r.try_get("event_at")?))))
        .transpose()
}

pub(crate) async fn touching(
    conn: &mut SqliteConnection,
    provider: Provider,
    ids: &[String],
) -> Result<Vec<Ownership>, sqlx::Error> {
    let list = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
    let rows = conn
        .fetch_all(
            sqlx::query(
                "SELECT key, subject, user_id, product_id, environment, state_at FROM subscriptions
                 WHERE provider = ?1 AND (subject IN (SELECT value FROM json_each(?2))
                    OR user_id IN (SELECT value FROM json_each(?2)))
                 ORDER BY key",
            )
            .bind(provider.as_str())
            .bind(list),
        )
        .await?;
    rows.iter().map(ownership_of).collect()
}

pub(crate) async fn set_owner(
    conn: &mut SqliteConnection,
    provider: Provider,
    key: &str,
    user_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    conn.execute(
        sqlx::query("UPDATE subscriptions SET user_id = ?3 WHERE provider = ?1 AND key = ?2")
            .bind(provider.as_str())
            .bind(key)
            .bind(user_id),
    )
    .await
    .map(|_| ())
}

pub(crate) async fn set_override(
    conn: &mut SqliteConnection,
    user_id: &str,
    o: &Override,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    conn.execute(
        sqlx::query(
            "INSERT INTO entitlement_overrides (user_id, entitlement, revoked, expires_at, reason,
                actor, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (user_id, entitlement) DO UPDATE SET revoked = excluded.revoked,
                expires_at = excluded.expires_at, reason = excluded.reason,
                actor = excluded.actor, created_at = excluded.created_at",
        )
        .bind(user_id)
        .bind(&o.entitlement)
        .bind(o.revoked)
        .bind(o.expires_at.map(ts))
        .bind(&o.reason)
        .bind(actor)
        .bind(ts(now)),
    )
    .await
    .map(|_| ())
}

pub(crate) async fn payloads_not_under(
    conn: &mut SqliteConnection,
    current_key: &str,
    limit: i64,
) -> Result<Vec<SealedPayload>, sqlx::Error> {
    let rows = conn
        .fetch_all(
            sqlx::query(
                "SELECT provider, event_id, payload FROM billing_events
                 WHERE payload IS NOT NULL AND key_id <> ?1 ORDER BY received_at LIMIT ?2",
            )
            .bind(current_key)
            .bind(limit),
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(SealedPayload {
                provider: r.try_get("provider")?,
                event_id: r.try_get("event_id")?,
                payload: r.try_get("payload")?,
            })
        })
        .collect()
}

pub(crate) async fn replace_payload(
    conn: &mut SqliteConnection,
    provider: &str,
    event_id: &str,
    key_id: &str,
    payload: &[u8],
) -> Result<(), sqlx::Error> {
    conn.execute(
        sqlx::query(
            "UPDATE billing_events SET key_id = ?3, payload = ?4 WHERE provider = ?1 AND event_id = ?2",
        )
        .bind(provider)
        .bind(event_id)
        .bind(key_id)
        .bind(payload),
    )
    .await
    .map(|_| ())
}

pub(crate) async fn holdings(pool: &SqlitePool, user_id: &str) -> Result<Holdings, sqlx::Error> {
    let subs = pool
        .fetch_all(
            sqlx::query(
                "SELECT provider, environment, product_id, entitlements, grants, expires_at,
                    grace_until, grace_at, reset_at, paid_through, will_renew
                 FROM subscriptions WHERE user_id = ?1 ORDER BY provider, key",
            )
            .bind(user_id),
        )
        .await?;
    let overrides = pool
        .fetch_all(
            sqlx::query(
                "SELECT entitlement, revoked, expires_at, reason FROM entitlement_overrides
                 WHERE user_id = ?1 ORDER BY entitlement",
            )
            .bind(user_id),
        )
        .await?;
    let time = |v: Option<i64>| v.map(from_ts);
    Ok(Holdings {
        subscriptions: subs
            .iter()
            .map(|r| {
                let provider: String = r.try_get("provider")?;
                let environment: String = r.try_get("environment")?;
                let entitlements: String = r.try_get("entitlements")?;
                Ok(Holding {
                    provider: Provider::parse(&provider).unwrap_or(Provider::Manual),
                    environment: Environment::parse(&environment),
                    product_id: r.try_get("product_id")?,
                    entitlements: serde_json::from_str(&entitlements).unwrap_or_default(),
                    grants: r.try_get("grants")?,
                    expires_at: time(r.try_get("expires_at")?),
                    grace_until: live_grace(
                        r.try_get("grace_until")?,
                        r.try_get("grace_at")?,
                        r.try_get("reset_at")?,
                    )
                    .map(from_ts),
                    paid_through: time(r.try_get("paid_through")?),
                    will_renew: r.try_get("will_renew")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?,
        overrides: overrides
            .iter()
            .map(|r| {
                Ok(Override {
                    entitlement: r.try_get("entitlement")?,
                    revoked: r.try_get("revoked")?,
                    expires_at: time(r.try_get("expires_at")?),
                    reason: r.try_get("reason")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?,
    })
}

pub(crate) async fn event(
    pool: &SqlitePool,
    provider: Provider,
    event_id: &str,
) -> Result<Option<(EventSummary, Option<Vec<u8>>)>, sqlx::Error> {
    let row = pool
        .fetch_optional(
            sqlx::query(
                "SELECT provider, event_id, event_type, user_id, product_id, environment,
                    event_at, received_at, outcome, payload
                 FROM billing_events WHERE provider = ?1 AND event_id = ?2",
            )
            .bind(provider.as_str())
            .bind(event_id),
        )
        .await?;
    row.map(|r| {
        Ok((
            EventSummary {
                provider: r.try_get("provider")?,
                event_id: r.try_get("event_id")?,
                event_type: r.try_get("event_type")?,
                user_id: r.try_get("user_id")?,
                product_id: r.try_get("product_id")?,
                environment: r.try_get("environment")?,
                event_at: from_ts(r.try_get("event_at")?),
                received_at: from_ts(r.try_get("received_at")?),
                outcome: r.try_get("outcome")?,
            },
            r.try_get("payload")?,
        ))
    })
    .transpose()
}

/// The grace end, unless a recovery came after the event that named it.
fn live_grace(until: Option<i64>, at: Option<i64>, reset: Option<i64>) -> Option<i64> {
    match (at, reset) {
        (Some(at), Some(reset)) if reset > at => None,
        _ => until,
    }
}
