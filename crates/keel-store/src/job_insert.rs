//! The insert of one job, one statement text for both engines, used by each engine's batch
//! insert.

use chrono::{DateTime, Utc};
use keel_domain::jobs::{Enqueued, JobState, NewJob};
use sqlx::types::Json;

use super::sql::{Cols, Ts};

const INSERT_ONE: &str =
    "INSERT INTO jobs (queue, kind, args, state, priority, run_at, max_attempts,
        timeout_ms, unique_key, breaker_key, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
    ON CONFLICT (unique_key)
        WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'available', 'running', 'retryable')
        DO NOTHING
    RETURNING id";

const LIVE_BY_KEY: &str = "SELECT id FROM jobs WHERE unique_key = $1
    AND state IN ('scheduled', 'available', 'running', 'retryable')";

/// The state a new job starts in, and when it may first run.
pub(crate) fn start_of(job: &NewJob, now: DateTime<Utc>) -> (JobState, DateTime<Utc>) {
    match job.run_at {
        Some(at) if at > now => (JobState::Scheduled, at),
        Some(at) => (JobState::Available, at),
        None => (JobState::Available, now),
    }
}

/// The job timeout as stored: whole milliseconds.
pub(crate) fn timeout_ms(job: &NewJob) -> i64 {
    i64::try_from(job.timeout.as_millis()).unwrap_or(i64::MAX)
}

/// Defines, for one engine's connection type, the insert of one job: a unique key held by a live
/// job returns that job instead (retried while the key changes hands between the two statements).
macro_rules! insert_one_on {
    ($name:ident, $conn:ty) => {
        pub(crate) async fn $name(
            conn: &mut $conn,
            now: DateTime<Utc>,
            job: &NewJob,
        ) -> Result<Enqueued, sqlx::Error> {
            let (state, run_at) = start_of(job, now);
            for _ in 0..5 {
                let inserted = sqlx::query(INSERT_ONE)
                    .bind(&job.queue)
                    .bind(&job.kind)
                    .bind(Json(&job.args))
                    .bind(state.as_str())
                    .bind(job.priority)
                    .bind(Ts(run_at))
                    .bind(job.max_attempts)
                    .bind(timeout_ms(job))
                    .bind(&job.unique_key)
                    .bind(&job.breaker_key)
                    .bind(Ts(now))
                    .fetch_optional(&mut *conn)
                    .await?;
                if let Some(row) = inserted {
                    let id = row.int_at(0)?;
                    return Ok(Enqueued {
                        id,
                        deduplicated: false,
                    });
                }
                let existing = sqlx::query(LIVE_BY_KEY)
                    .bind(&job.unique_key)
                    .fetch_optional(&mut *conn)
                    .await?;
                if let Some(row) = existing {
                    let id = row.int_at(0)?;
                    return Ok(Enqueued {
                        id,
                        deduplicated: true,
                    });
                }
            }
            Err(sqlx::Error::Protocol(
                "unique key kept changing hands".into(),
            ))
        }
    };
}

insert_one_on!(insert_one_sqlite, sqlx::SqliteConnection);
insert_one_on!(insert_one_postgres, sqlx::PgConnection);
