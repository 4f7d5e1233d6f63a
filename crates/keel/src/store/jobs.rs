//! Job rows and the operations on them, dispatched to each engine's SQL.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{postgres, sqlite, Db, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Scheduled,
    Available,
    Running,
    Retryable,
    Completed,
    Discarded,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 7] = [
        JobState::Scheduled,
        JobState::Available,
        JobState::Running,
        JobState::Retryable,
        JobState::Completed,
        JobState::Discarded,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Scheduled => "scheduled",
            JobState::Available => "available",
            JobState::Running => "running",
            JobState::Retryable => "retryable",
            JobState::Completed => "completed",
            JobState::Discarded => "discarded",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

/// A job to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub queue: String,
    pub kind: String,
    pub args: serde_json::Value,
    /// Lower runs first.
    pub priority: i16,
    /// `None`: now.
    pub run_at: Option<DateTime<Utc>>,
    pub max_attempts: i32,
    pub timeout: Duration,
    pub unique_key: Option<String>,
    pub breaker_key: Option<String>,
}

/// The result of one insert: the new job, or the live job holding the same unique key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Enqueued {
    pub id: i64,
    pub deduplicated: bool,
}

/// A job taken by a worker.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub priority: i16,
    pub queue: String,
    pub kind: String,
    pub args: serde_json::Value,
    pub attempt: i32,
    pub max_attempts: i32,
    pub timeout: Duration,
    pub breaker_key: Option<String>,
    pub run_at: DateTime<Utc>,
}

/// How an attempt ended, as written back.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed,
    Retry {
        run_at: DateTime<Utc>,
        error: String,
    },
    Discard {
        error: String,
    },
}

#[derive(Debug, Clone)]
pub struct Report {
    pub id: i64,
    pub outcome: Outcome,
    pub breaker_key: Option<String>,
}

/// A job as listed by operators.
#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    pub id: i64,
    pub queue: String,
    pub kind: String,
    pub state: JobState,
    pub attempt: i32,
    pub max_attempts: i32,
    pub priority: i16,
    pub args: serde_json::Value,
    pub unique_key: Option<String>,
    pub breaker_key: Option<String>,
    pub run_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub id: Option<i64>,
    pub queue: Option<String>,
    pub kind: Option<String>,
    pub states: Vec<JobState>,
    pub limit: i64,
}

/// Per queue: how many jobs are in each state.
pub type QueueCounts = BTreeMap<String, BTreeMap<JobState, i64>>;

/// What a claim may take: one queue, jobs due by `now`, leased until `lease_until` by `worker`.
#[derive(Debug, Clone)]
pub struct ClaimSpec<'a> {
    pub queue: &'a str,
    pub worker: &'a str,
    pub now: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
    pub limit: i64,
    /// Claim only jobs ordered after this one (see [`ClaimCursor`]).
    pub after: Option<ClaimCursor>,
}

/// The sort key of the last job a runner claimed. While a runner drains a backlog, claiming
/// after it skips the index entries of jobs claimed a moment ago, which Postgres keeps until it
/// vacuums them. Jobs that sort before the cursor (a released job, a new job of a lower
/// priority value) are found by the next claim without one, which runners make at least every
/// [`ClaimCursor::MAX_AGE`] and whenever a cursor claim comes back short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimCursor {
    pub priority: i16,
    pub run_at: DateTime<Utc>,
    pub id: i64,
}

impl ClaimCursor {
    pub const MAX_AGE: std::time::Duration = std::time::Duration::from_millis(250);
}

/// Breaker accounting: after `threshold` consecutive failures a key is deferred for `cooldown`.
#[derive(Debug, Clone, Copy)]
pub struct BreakerPolicy {
    pub threshold: i32,
    pub cooldown: Duration,
}

pub(crate) fn ts(d: DateTime<Utc>) -> i64 {
    d.timestamp_millis()
}

pub(crate) fn from_ts(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
}

macro_rules! on_engine {
    ($db:expr, $f:ident $(, $arg:expr)*) => {
        match $db {
            Db::Sqlite(pool) => sqlite::jobs::$f(pool $(, $arg)*).await,
            Db::Postgres(pool) => postgres::jobs::$f(pool $(, $arg)*).await,
        }
    };
}

impl Db {
    /// Inserts jobs (unique keys deduplicated against live jobs) in one transaction.
    pub async fn insert_jobs(
        &self,
        now: DateTime<Utc>,
        jobs: &[NewJob],
    ) -> Result<Vec<Enqueued>, StoreError> {
        Ok(on_engine!(self, insert_jobs, now, jobs)?)
    }

    /// Writes the outcomes of finished attempts and claims up to `spec.limit` due jobs, in one
    /// round trip where the engine allows.
    pub async fn report_and_claim(
        &self,
        reports: &[Report],
        spec: &ClaimSpec<'_>,
        breakers: BreakerPolicy,
    ) -> Result<Vec<Claimed>, StoreError> {
        Ok(on_engine!(self, report_and_claim, reports, spec, breakers)?)
    }

    /// Records that `worker` lives until `until`; its running jobs stay its own meanwhile.
    pub async fn renew_worker_lease(
        &self,
        worker: &str,
        until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Ok(on_engine!(self, renew_lease, worker, until)?)
    }

    /// Forgets `worker`'s lease (it stopped after releasing its jobs).
    pub async fn end_worker_lease(&self, worker: &str) -> Result<(), StoreError> {
        Ok(on_engine!(self, end_lease, worker)?)
    }

    /// Returns the running jobs of workers whose lease expired (their process died) to
    /// `available`, or `discarded` when they have no attempts left.
    pub async fn rescue_dead_workers(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(on_engine!(self, rescue_dead_workers, now)?)
    }

    /// [`Db::rescue_dead_workers`], plus running jobs held by no live worker lease whose own
    /// lease ran out. Scans the running jobs.
    pub async fn rescue_jobs(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(on_engine!(self, rescue, now)?)
    }

    /// Gives running jobs back (shutdown): available again, the attempt not counted.
    pub async fn release_jobs(&self, worker: &str, ids: &[i64]) -> Result<u64, StoreError> {
        Ok(on_engine!(self, release, worker, ids)?)
    }

    /// Deletes completed and cancelled jobs finished before `done_before`, and discarded ones
    /// finished before `discarded_before`.
    pub async fn prune_jobs(
        &self,
        done_before: DateTime<Utc>,
        discarded_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(on_engine!(self, prune, done_before, discarded_before)?)
    }

    pub async fn job_counts(&self) -> Result<QueueCounts, StoreError> {
        Ok(on_engine!(self, counts)?)
    }

    pub async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<JobRow>, StoreError> {
        Ok(on_engine!(self, list, filter)?)
    }

    /// The oldest `run_at` of due, unclaimed jobs per queue.
    pub async fn oldest_waiting(
        &self,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, DateTime<Utc>>, StoreError> {
        Ok(on_engine!(self, oldest_waiting, now)?)
    }

    /// Retryable and discarded jobs per queue and kind: `(queue, kind, state, count)`.
    pub async fn failed_counts(&self) -> Result<Vec<(String, String, JobState, i64)>, StoreError> {
        use sqlx::Row;
        const SQL: &str = "SELECT queue, kind, state, count(*) AS n FROM jobs
            WHERE state IN ('retryable', 'discarded') GROUP BY queue, kind, state ORDER BY queue, kind, state";
        let rows: Vec<(String, String, String, i64)> = match self {
            Db::Sqlite(pool) => sqlx::query(SQL)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
                .collect::<Result<_, sqlx::Error>>()?,
            Db::Postgres(pool) => sqlx::query(SQL)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
                .collect::<Result<_, sqlx::Error>>()?,
        };
        Ok(rows
            .into_iter()
            .filter_map(|(q, k, s, n)| JobState::parse(&s).map(|s| (q, k, s, n)))
            .collect())
    }

    /// Deletes every job of `queue` (benchmarks clean up after themselves).
    pub async fn delete_queue(&self, queue: &str) -> Result<u64, StoreError> {
        Ok(match self {
            Db::Sqlite(pool) => sqlx::query("DELETE FROM jobs WHERE queue = ?1")
                .bind(queue)
                .execute(pool)
                .await?
                .rows_affected(),
            Db::Postgres(pool) => sqlx::query("DELETE FROM jobs WHERE queue = $1")
                .bind(queue)
                .execute(pool)
                .await?
                .rows_affected(),
        })
    }

    /// Vacuums and analyzes the jobs table (Postgres; SQLite needs none), so a measurement starts
    /// from the state steady autovacuum keeps, not from the dead rows of the previous one.
    pub async fn vacuum_jobs(&self) -> Result<(), StoreError> {
        if let Db::Postgres(pool) = self {
            sqlx::query("VACUUM (ANALYZE) jobs").execute(pool).await?;
        }
        Ok(())
    }

    /// Jobs discarded since `since` (served by the index of failed jobs).
    pub async fn discarded_since(&self, since: DateTime<Utc>) -> Result<i64, StoreError> {
        Ok(match self {
            Db::Sqlite(pool) => {
                sqlx::query_scalar(
                    "SELECT count(*) FROM jobs WHERE state = 'discarded' AND finished_at >= ?1",
                )
                .bind(ts(since))
                .fetch_one(pool)
                .await?
            }
            Db::Postgres(pool) => {
                sqlx::query_scalar(
                    "SELECT count(*) FROM jobs WHERE state = 'discarded' AND finished_at >= $1",
                )
                .bind(since)
                .fetch_one(pool)
                .await?
            }
        })
    }
}
