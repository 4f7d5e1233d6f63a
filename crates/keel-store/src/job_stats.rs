//! Reading and pruning job rows for operators and reports: one statement text for both engines.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::jobs::{JobFilter, JobRow, JobState, QueueCounts};
use super::sql::{arg_matches, in_list, map_rows, on_db, Cols, List, Ts};
use super::{Db, StoreError};

fn job_row(r: &impl Cols) -> Result<JobRow, sqlx::Error> {
    let state = r.text("state")?;
    Ok(JobRow {
        id: r.int("id")?,
        queue: r.text("queue")?,
        kind: r.text("kind")?,
        state: JobState::parse(&state)
            .ok_or_else(|| sqlx::Error::Decode(format!("job state {state}").into()))?,
        attempt: r.int4("attempt")?,
        max_attempts: r.int4("max_attempts")?,
        priority: r.int2("priority")?,
        args: r.json("args").unwrap_or(serde_json::Value::Null),
        unique_key: r.text_opt("unique_key")?,
        breaker_key: r.text_opt("breaker_key")?,
        run_at: r.at("run_at")?,
        created_at: r.at("created_at")?,
        finished_at: r.at_opt("finished_at")?,
        last_error: r.text_opt("last_error")?,
    })
}

impl Db {
    /// Deletes completed and cancelled jobs finished before `done_before`, and discarded ones
    /// finished before `discarded_before`.
    pub async fn prune_jobs(
        &self,
        done_before: DateTime<Utc>,
        discarded_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let jobs =
            "DELETE FROM jobs WHERE (state IN ('completed', 'cancelled') AND finished_at < $1)
                       OR (state = 'discarded' AND finished_at < $2)";
        let ticks = "DELETE FROM schedule_ticks WHERE fired_at < $1";
        Ok(on_db!(self, |pool| {
            let done = sqlx::query(jobs)
                .bind(Ts(done_before))
                .bind(Ts(discarded_before))
                .execute(pool)
                .await?;
            sqlx::query(ticks)
                .bind(Ts(discarded_before))
                .execute(pool)
                .await?;
            done.rows_affected()
        }))
    }

    pub async fn job_counts(&self) -> Result<QueueCounts, StoreError> {
        let q = "SELECT queue, state, count(*) AS n FROM jobs GROUP BY queue, state";
        let rows = on_db!(self, |pool| map_rows(
            &sqlx::query(q).fetch_all(pool).await?,
            |r| Ok((r.text("queue")?, r.text("state")?, r.int("n")?))
        ))?;
        let mut out = QueueCounts::new();
        for (queue, state, n) in rows {
            if let Some(state) = JobState::parse(&state) {
                out.entry(queue).or_default().insert(state, n);
            }
        }
        Ok(out)
    }

    pub async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<JobRow>, StoreError> {
        let states: Vec<&str> = filter.states.iter().map(|s| s.as_str()).collect();
        let q = format!(
            "SELECT id, queue, kind, state, attempt, max_attempts, priority, args, unique_key,
                    breaker_key, run_at, created_at, finished_at, last_error
             FROM jobs
             WHERE (CAST($1 AS BIGINT) IS NULL OR id = $1) AND (CAST($2 AS TEXT) IS NULL OR queue = $2)
               AND (CAST($3 AS TEXT) IS NULL OR kind = $3) AND ($6 = 0 OR state {})
               AND {}
             ORDER BY id DESC LIMIT $5",
            in_list(self.engine(), "$4"),
            arg_matches(self.engine(), "$7", "$8")
        );
        Ok(on_db!(self, |pool| map_rows(
            &sqlx::query(&q)
                .bind(filter.id)
                .bind(&filter.queue)
                .bind(&filter.kind)
                .bind(List(&states))
                .bind(filter.limit)
                .bind(i64::try_from(states.len()).unwrap_or(i64::MAX))
                .bind(filter.arg.as_ref().map(|a| a.key.as_str()))
                .bind(filter.arg.as_ref().map(|a| a.value.as_str()))
                .fetch_all(pool)
                .await?,
            job_row
        ))?)
    }

    /// How many jobs match `filter` (its id, queue, kind and states), counting no further than
    /// `cap`.
    pub async fn count_jobs(&self, filter: &JobFilter, cap: i64) -> Result<i64, StoreError> {
        let states: Vec<&str> = filter.states.iter().map(|s| s.as_str()).collect();
        let q = format!(
            "SELECT count(*) AS n FROM (SELECT id FROM jobs
             WHERE (CAST($1 AS BIGINT) IS NULL OR id = $1) AND (CAST($2 AS TEXT) IS NULL OR queue = $2)
               AND (CAST($3 AS TEXT) IS NULL OR kind = $3) AND ($6 = 0 OR state {})
               AND {}
             LIMIT $5) matching",
            in_list(self.engine(), "$4"),
            arg_matches(self.engine(), "$7", "$8")
        );
        Ok(on_db!(self, |pool| sqlx::query(&q)
            .bind(filter.id)
            .bind(&filter.queue)
            .bind(&filter.kind)
            .bind(List(&states))
            .bind(cap)
            .bind(i64::try_from(states.len()).unwrap_or(i64::MAX))
            .bind(filter.arg.as_ref().map(|a| a.key.as_str()))
            .bind(filter.arg.as_ref().map(|a| a.value.as_str()))
            .fetch_one(pool)
            .await?
            .int("n"))?)
    }

    /// The oldest `run_at` of due, unclaimed jobs per queue.
    pub async fn oldest_waiting(
        &self,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, DateTime<Utc>>, StoreError> {
        let q = "SELECT queue, min(run_at) AS oldest FROM jobs
                 WHERE state IN ('available', 'scheduled', 'retryable') AND run_at <= $1
                 GROUP BY queue";
        let rows = on_db!(self, |pool| map_rows(
            &sqlx::query(q).bind(Ts(now)).fetch_all(pool).await?,
            |r| Ok((r.text("queue")?, r.at("oldest")?))
        ))?;
        Ok(rows.into_iter().collect())
    }

    /// Retryable and discarded jobs per queue and kind: `(queue, kind, state, count)`.
    pub async fn failed_counts(&self) -> Result<Vec<(String, String, JobState, i64)>, StoreError> {
        let q = "SELECT queue, kind, state, count(*) AS n FROM jobs
                 WHERE state IN ('retryable', 'discarded')
                 GROUP BY queue, kind, state ORDER BY queue, kind, state";
        let rows = on_db!(self, |pool| map_rows(
            &sqlx::query(q).fetch_all(pool).await?,
            |r| Ok((
                r.text("queue")?,
                r.text("kind")?,
                r.text("state")?,
                r.int("n")?
            ))
        ))?;
        Ok(rows
            .into_iter()
            .filter_map(|(q, k, s, n)| JobState::parse(&s).map(|s| (q, k, s, n)))
            .collect())
    }

    /// Deletes every job of `queue` (benchmarks clean up after themselves).
    pub async fn delete_queue(&self, queue: &str) -> Result<u64, StoreError> {
        let q = "DELETE FROM jobs WHERE queue = $1";
        Ok(on_db!(self, |pool| sqlx::query(q)
            .bind(queue)
            .execute(pool)
            .await?
            .rows_affected()))
    }

    /// Vacuums and analyzes the jobs table (Postgres; SQLite needs none), so a measurement starts
    /// from the state steady autovacuum keeps, not from the dead rows of the previous one.
    pub async fn vacuum_jobs(&self) -> Result<(), StoreError> {
        if let Db::Postgres(db) = self {
            db.run_outside_transaction("VACUUM (ANALYZE) jobs").await?;
        }
        Ok(())
    }

    /// Jobs discarded since `since` (served by the index of failed jobs).
    pub async fn discarded_since(&self, since: DateTime<Utc>) -> Result<i64, StoreError> {
        let q = "SELECT count(*) AS n FROM jobs WHERE state = 'discarded' AND finished_at >= $1";
        Ok(on_db!(self, |pool| sqlx::query(q)
            .bind(Ts(since))
            .fetch_one(pool)
            .await?
            .int("n")?))
    }
}
