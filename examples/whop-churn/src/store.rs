//! The example's own rows (a reminder per company and tick) beside Keel's, and the reads of
//! Keel's Whop subscriptions it needs. One statement text serves both engines.

use keel::store::{Db, StoreError, Tx};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS churn_reminders (
        company_id TEXT NOT NULL,
        tick       TEXT NOT NULL,
        members    INTEGER NOT NULL,
        sent_at    TEXT NOT NULL,
        PRIMARY KEY (company_id, tick)
    )";

/// Companies with members who keep access but will not renew.
const AT_RISK_COMPANIES: &str = "SELECT DISTINCT tenant_id FROM subscriptions
    WHERE provider = 'whop' AND tenant_id IS NOT NULL AND user_id IS NOT NULL
      AND grants = $1 AND will_renew = $2 ORDER BY tenant_id";

const AT_RISK_MEMBERS: &str = "SELECT DISTINCT user_id FROM subscriptions
    WHERE provider = 'whop' AND tenant_id = $1 AND user_id IS NOT NULL
      AND grants = $2 AND will_renew = $3 ORDER BY user_id";

const JOB_KEY: &str = "SELECT unique_key FROM jobs WHERE id = $1";

const SENT: &str = "SELECT count(*) FROM churn_reminders WHERE company_id = $1 AND tick = $2";

const RECORD: &str = "INSERT INTO churn_reminders (company_id, tick, members, sent_at)
    VALUES ($1, $2, $3, $4) ON CONFLICT (company_id, tick) DO NOTHING";

/// Runs one query builder on whichever pool `db` holds.
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

/// Creates the example's table when it does not exist.
pub async fn ensure_schema(db: &Db) -> Result<(), StoreError> {
    on_pool!(db, |p| sqlx::query(SCHEMA).execute(p).await.map(|_| ()))?;
    Ok(())
}

fn strings(rows: Vec<(String,)>) -> Vec<String> {
    rows.into_iter().map(|(s,)| s).collect()
}

/// Companies with at-risk members, in order.
pub async fn at_risk_companies(db: &Db) -> Result<Vec<String>, StoreError> {
    let rows = on_pool!(db, |p| sqlx::query_as(AT_RISK_COMPANIES)
        .bind(true)
        .bind(false)
        .fetch_all(p)
        .await)?;
    Ok(strings(rows))
}

/// The at-risk members of one company.
pub async fn at_risk_members(db: &Db, company: &str) -> Result<Vec<String>, StoreError> {
    let rows = on_pool!(db, |p| sqlx::query_as(AT_RISK_MEMBERS)
        .bind(company)
        .bind(true)
        .bind(false)
        .fetch_all(p)
        .await)?;
    Ok(strings(rows))
}

/// The unique key of job `id` (a scheduled job's names the schedule and its tick).
pub async fn job_key(db: &Db, id: i64) -> Result<Option<String>, StoreError> {
    let row: Option<(Option<String>,)> = on_pool!(db, |p| sqlx::query_as(JOB_KEY)
        .bind(id)
        .fetch_optional(p)
        .await)?;
    Ok(row.and_then(|(key,)| key))
}

/// Whether the reminder of `company` for `tick` was sent.
pub async fn sent(db: &Db, company: &str, tick: &str) -> Result<bool, StoreError> {
    let (n,): (i64,) = on_pool!(db, |p| sqlx::query_as(SENT)
        .bind(company)
        .bind(tick)
        .fetch_one(p)
        .await)?;
    Ok(n > 0)
}

/// Records the reminder in `tx`; false when it was recorded before.
pub async fn record(
    tx: &mut Tx,
    company: &str,
    tick: &str,
    members: usize,
    sent_at: &str,
) -> Result<bool, StoreError> {
    let members = i64::try_from(members).unwrap_or(i64::MAX);
    let done = match tx {
        Tx::Sqlite(t) => {
            sqlx::query(RECORD)
                .bind(company)
                .bind(tick)
                .bind(members)
                .bind(sent_at)
                .execute(&mut **t)
                .await?
        }
        .rows_affected(),
        Tx::Postgres(t) => {
            sqlx::query(RECORD)
                .bind(company)
                .bind(tick)
                .bind(members)
                .bind(sent_at)
                .execute(&mut **t)
                .await?
        }
        .rows_affected(),
    };
    Ok(done == 1)
}
