//! Jobs on SQLite: one writer at a time (`BEGIN IMMEDIATE`), so a claim is a plain
//! `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING`. Times are milliseconds since the epoch.

use chrono::{DateTime, Utc};
use sqlx::{Executor, Row, SqliteConnection, SqlitePool};

use keel_domain::jobs::{
    BreakerPolicy, ClaimSpec, Claimed, Enqueued, JobState, NewJob, Outcome, Report,
};

use super::{from_ts, ts};
use crate::breakers::record_breakers_sqlite;
use crate::job_insert::insert_one_sqlite;

pub(crate) async fn insert_jobs(
    pool: &SqlitePool,
    now: DateTime<Utc>,
    jobs: &[NewJob],
) -> Result<Vec<Enqueued>, sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let out = insert_jobs_in(&mut tx, now, jobs).await?;
    tx.commit().await?;
    Ok(out)
}

/// Inserts on the caller's connection or transaction.
pub async fn insert_jobs_in(
    conn: &mut SqliteConnection,
    now: DateTime<Utc>,
    jobs: &[NewJob],
) -> Result<Vec<Enqueued>, sqlx::Error> {
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        out.push(insert_one_sqlite(conn, now, job).await?);
    }
    Ok(out)
}

pub(crate) async fn report_and_claim(
    pool: &SqlitePool,
    reports: &[Report],
    spec: &ClaimSpec<'_>,
    breakers: BreakerPolicy,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    write_reports(&mut tx, reports, spec.worker, spec.now).await?;
    if reports.iter().any(|r| r.breaker_key.is_some()) {
        record_breakers_sqlite(&mut tx, reports, spec.now, breakers).await?;
    }
    let claimed = if spec.limit > 0 {
        claim(&mut tx, spec).await?
    } else {
        Vec::new()
    };
    tx.commit().await?;
    Ok(claimed)
}

async fn write_reports(
    conn: &mut SqliteConnection,
    reports: &[Report],
    worker: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let completed: Vec<i64> = reports
        .iter()
        .filter(|r| r.outcome == Outcome::Completed)
        .map(|r| r.id)
        .collect();
    if !completed.is_empty() {
        conn.execute(
            sqlx::query(
                "UPDATE jobs SET state = 'completed', finished_at = ?1, locked_by = NULL, lease_expires_at = NULL
                 WHERE id IN (SELECT value FROM json_each(?2)) AND state = 'running' AND locked_by = ?3",
            )
            .bind(ts(now))
            .bind(serde_json::to_string(&completed).unwrap_or_default())
            .bind(worker),
        )
        .await?;
    }
    for report in reports {
        let (state, run_at, error) = match &report.outcome {
            Outcome::Completed => continue,
            Outcome::Retry { run_at, error } => (JobState::Retryable, Some(ts(*run_at)), error),
            Outcome::Discard { error } => (JobState::Discarded, None, error),
        };
        let finished = (state == JobState::Discarded).then_some(ts(now));
        conn.execute(
            sqlx::query(
                "UPDATE jobs SET state = ?1, run_at = COALESCE(?2, run_at), last_error = ?3, finished_at = ?4,
                    locked_by = NULL, lease_expires_at = NULL
                 WHERE id = ?5 AND state = 'running' AND locked_by = ?6",
            )
            .bind(state.as_str())
            .bind(run_at)
            .bind(error)
            .bind(finished)
            .bind(report.id)
            .bind(worker),
        )
        .await?;
    }
    Ok(())
}

async fn claim(
    conn: &mut SqliteConnection,
    spec: &ClaimSpec<'_>,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let now = ts(spec.now);
    let rows = conn
        .fetch_all(
            sqlx::query(
                "UPDATE jobs SET state = 'running', attempt = attempt + 1, attempted_at = ?1,
                    lease_expires_at = ?2, locked_by = ?3
                 WHERE id IN (
                    SELECT id FROM jobs
                    WHERE state IN ('available', 'scheduled', 'retryable') AND queue = ?4 AND run_at <= ?1
                      AND (breaker_key IS NULL OR NOT EXISTS (
                          SELECT 1 FROM job_breakers b WHERE b.key = jobs.breaker_key AND b.open_until > ?1))
                    ORDER BY priority, run_at, id
                    LIMIT ?5)
                 RETURNING id, queue, kind, args, attempt, max_attempts, timeout_ms, breaker_key, run_at, priority, created_at",
            )
            .bind(now)
            .bind(ts(spec.lease_until))
            .bind(spec.worker)
            .bind(spec.queue)
            .bind(spec.limit),
        )
        .await?;
    let mut claimed: Vec<(i64, Claimed)> = rows
        .iter()
        .map(|row| {
            let args: String = row.try_get("args")?;
            Ok((
                row.try_get("priority")?,
                Claimed {
                    id: row.try_get("id")?,
                    priority: row.try_get::<i64, _>("priority")? as i16,
                    queue: row.try_get("queue")?,
                    kind: row.try_get("kind")?,
                    args: serde_json::from_str(&args).unwrap_or(serde_json::Value::Null),
                    attempt: row.try_get("attempt")?,
                    max_attempts: row.try_get("max_attempts")?,
                    timeout: std::time::Duration::from_millis(
                        row.try_get::<i64, _>("timeout_ms")?.max(0) as u64,
                    ),
                    breaker_key: row.try_get("breaker_key")?,
                    run_at: from_ts(row.try_get("run_at")?),
                    created_at: from_ts(row.try_get("created_at")?),
                },
            ))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    claimed.sort_by_key(|(priority, c)| (*priority, c.run_at, c.id));
    Ok(claimed.into_iter().map(|(_, c)| c).collect())
}
