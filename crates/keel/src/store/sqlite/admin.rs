//! Operator actions, flags, audit rows and schedule ticks on SQLite, inside a transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::{Executor, Row, SqliteConnection};

use crate::store::audit::{AuditEntry, AuditRow};
use crate::store::jobs::{from_ts, ts, JobFilter};
use crate::store::tx::FlagRow;

/// A retried job must not make a second live job with its unique key: it is skipped while a live
/// job holds the key, and of several finished jobs sharing a key only the newest comes back.
const RETRY_KEEPS_KEYS_UNIQUE: &str = "AND (unique_key IS NULL OR state = 'retryable' OR (
        NOT EXISTS (SELECT 1 FROM jobs l WHERE l.unique_key = jobs.unique_key
            AND l.state IN ('scheduled', 'available', 'running', 'retryable'))
        AND id = (SELECT max(d.id) FROM jobs d WHERE d.unique_key = jobs.unique_key
            AND d.state IN ('discarded', 'cancelled'))))";

const WAITING: &str = "('scheduled', 'available', 'retryable')";

pub(crate) async fn insert_audit(
    conn: &mut SqliteConnection,
    entry: &AuditEntry,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    conn.execute(
        sqlx::query("INSERT INTO audit_log (id, at, actor, action, target, metadata) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(ts(now))
            .bind(&entry.actor)
            .bind(&entry.action)
            .bind(&entry.target)
            .bind(entry.metadata.to_string()),
    )
    .await
    .map(|_| ())
}

pub(crate) async fn audit_rows(
    conn: &mut SqliteConnection,
    target: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    let rows = conn
        .fetch_all(
            sqlx::query(
                "SELECT at, actor, action, target, metadata FROM audit_log
                 WHERE (?1 IS NULL OR target = ?1) ORDER BY at DESC, id DESC LIMIT ?2",
            )
            .bind(target)
            .bind(limit),
        )
        .await?;
    rows.iter()
        .map(|r| {
            let metadata: String = r.try_get("metadata")?;
            Ok(AuditRow {
                at: from_ts(r.try_get("at")?),
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                metadata: serde_json::from_str(&metadata).unwrap_or(serde_json::Value::Null),
            })
        })
        .collect()
}

fn filter_sql(states: &str) -> String {
    format!(
        "SELECT id FROM jobs WHERE state IN {states} AND (?1 IS NULL OR id = ?1)
           AND (?2 IS NULL OR queue = ?2) AND (?3 IS NULL OR kind = ?3)
         ORDER BY id LIMIT ?4"
    )
}

pub(crate) async fn retry_jobs(
    conn: &mut SqliteConnection,
    filter: &JobFilter,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, sqlx::Error> {
    let rows = conn
        .fetch_all(
            sqlx::query(&format!(
                "UPDATE jobs SET state = 'available', run_at = ?5, finished_at = NULL,
                    max_attempts = MAX(max_attempts, attempt + 1)
                 WHERE id IN ({}) {RETRY_KEEPS_KEYS_UNIQUE} RETURNING id",
                filter_sql("('retryable', 'discarded', 'cancelled')")
            ))
            .bind(filter.id)
            .bind(&filter.queue)
            .bind(&filter.kind)
            .bind(filter.limit)
            .bind(ts(now)),
        )
        .await?;
    rows.iter().map(|r| r.try_get(0)).collect()
}

pub(crate) async fn discard_jobs(
    conn: &mut SqliteConnection,
    filter: &JobFilter,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, sqlx::Error> {
    let rows = conn
        .fetch_all(
            sqlx::query(&format!(
                "UPDATE jobs SET state = 'discarded', finished_at = ?5,
                    last_error = COALESCE(last_error, 'discarded by an operator')
                 WHERE id IN ({}) RETURNING id",
                filter_sql(WAITING)
            ))
            .bind(filter.id)
            .bind(&filter.queue)
            .bind(&filter.kind)
            .bind(filter.limit)
            .bind(ts(now)),
        )
        .await?;
    rows.iter().map(|r| r.try_get(0)).collect()
}

pub(crate) async fn drain_queue(
    conn: &mut SqliteConnection,
    queue: &str,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let done = conn
        .execute(
            sqlx::query(&format!(
                "UPDATE jobs SET state = 'cancelled', finished_at = ?2 WHERE queue = ?1 AND state IN {WAITING}"
            ))
            .bind(queue)
            .bind(ts(now)),
        )
        .await?;
    Ok(done.rows_affected())
}

pub(crate) async fn flags(conn: &mut SqliteConnection) -> Result<Vec<FlagRow>, sqlx::Error> {
    let rows = conn
        .fetch_all(sqlx::query(
            "SELECT name, enabled, updated_at, updated_by FROM flags ORDER BY name",
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(FlagRow {
                name: r.try_get("name")?,
                enabled: r.try_get::<i64, _>("enabled")? != 0,
                updated_at: from_ts(r.try_get("updated_at")?),
                updated_by: r.try_get("updated_by")?,
            })
        })
        .collect()
}

pub(crate) async fn set_flag(
    conn: &mut SqliteConnection,
    name: &str,
    enabled: bool,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    conn.execute(
        sqlx::query(
            "INSERT INTO flags (name, enabled, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET enabled = ?2, updated_at = ?3, updated_by = ?4",
        )
        .bind(name)
        .bind(i64::from(enabled))
        .bind(ts(now))
        .bind(actor),
    )
    .await
    .map(|_| ())
}

pub(crate) async fn record_tick(
    conn: &mut SqliteConnection,
    name: &str,
    fire_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = conn
        .execute(
            sqlx::query(
                "INSERT INTO schedule_ticks (name, fire_at, fired_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )
            .bind(name)
            .bind(ts(fire_at))
            .bind(ts(now)),
        )
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn tick_job(
    conn: &mut SqliteConnection,
    name: &str,
    fire_at: DateTime<Utc>,
    job_id: Option<i64>,
) -> Result<Option<i64>, sqlx::Error> {
    if let Some(id) = job_id {
        conn.execute(
            sqlx::query("UPDATE schedule_ticks SET job_id = ?3 WHERE name = ?1 AND fire_at = ?2")
                .bind(name)
                .bind(ts(fire_at))
                .bind(id),
        )
        .await?;
        return Ok(Some(id));
    }
    let row = conn
        .fetch_optional(
            sqlx::query("SELECT job_id FROM schedule_ticks WHERE name = ?1 AND fire_at = ?2")
                .bind(name)
                .bind(ts(fire_at)),
        )
        .await?;
    Ok(row.and_then(|r| r.try_get::<Option<i64>, _>(0).ok().flatten()))
}

pub(crate) async fn last_ticks(
    conn: &mut SqliteConnection,
) -> Result<BTreeMap<String, DateTime<Utc>>, sqlx::Error> {
    let rows = conn
        .fetch_all(sqlx::query(
            "SELECT CASE WHEN instr(name, '@') > 0 THEN substr(name, 1, instr(name, '@') - 1) ELSE name END
                    AS name, max(fired_at) AS at
             FROM schedule_ticks GROUP BY 1",
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("name")?, from_ts(r.try_get("at")?))))
        .collect()
}
