//! Worker leases and the rescue of jobs whose worker stopped: one statement text for both
//! engines.

use chrono::{DateTime, Utc};

use super::sql::{in_list, map_rows, on_db, on_tx, Cols, List, Ts};
use super::{Db, StoreError};

/// What a rescued job becomes: available again, or discarded when no attempt is left. `$1` is now.
const RESCUED: &str =
    "state = CASE WHEN attempt >= max_attempts THEN 'discarded' ELSE 'available' END,
    finished_at = CASE WHEN attempt >= max_attempts THEN $1 ELSE NULL END,
    run_at = $1,
    last_error = 'lease expired: the process running this job stopped',
    locked_by = NULL,
    lease_expires_at = NULL";

impl Db {
    /// Records that `worker` lives until `until`; its running jobs stay its own meanwhile.
    pub async fn renew_worker_lease(
        &self,
        worker: &str,
        until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let q = "INSERT INTO job_leases (worker, expires_at) VALUES ($1, $2)
                 ON CONFLICT (worker) DO UPDATE SET expires_at = $2";
        on_db!(self, |pool| {
            sqlx::query(q)
                .bind(worker)
                .bind(Ts(until))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Forgets `worker`'s lease (it stopped after releasing its jobs).
    pub async fn end_worker_lease(&self, worker: &str) -> Result<(), StoreError> {
        let q = "DELETE FROM job_leases WHERE worker = $1";
        on_db!(self, |pool| {
            sqlx::query(q).bind(worker).execute(pool).await?;
        });
        Ok(())
    }

    /// Returns the running jobs of workers whose lease expired (their process died) to
    /// `available`, or `discarded` when they have no attempts left. Costs one probe of the small
    /// lease table unless a worker died.
    ///
    /// `alive` names the calling worker: its lease and its jobs are never taken, whatever the
    /// clock says (a process that is rescuing is running, and a jump of its clock must not make
    /// it look dead to itself).
    pub async fn rescue_dead_workers(
        &self,
        now: DateTime<Utc>,
        alive: Option<&str>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let q = "DELETE FROM job_leases
                 WHERE expires_at < $1 AND worker IS DISTINCT FROM CAST($2 AS TEXT)
                 RETURNING worker";
        let dead = on_tx!(&mut tx, |c| map_rows(
            &sqlx::query(q)
                .bind(Ts(now))
                .bind(alive)
                .fetch_all(&mut **c)
                .await?,
            |r| r.text("worker")
        ))?;
        if dead.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }
        let q = format!(
            "UPDATE jobs SET {RESCUED} WHERE state = 'running' AND locked_by {}",
            in_list(self.engine(), "$2")
        );
        let done = on_tx!(&mut tx, |c| sqlx::query(&q)
            .bind(Ts(now))
            .bind(List(&dead))
            .execute(&mut **c)
            .await?
            .rows_affected());
        tx.commit().await?;
        Ok(done)
    }

    /// [`Db::rescue_dead_workers`], plus running jobs held by no live worker lease whose own
    /// lease ran out (a worker that never recorded one). Scans the running jobs. `alive` as for
    /// [`Db::rescue_dead_workers`].
    pub async fn rescue_jobs(
        &self,
        now: DateTime<Utc>,
        alive: Option<&str>,
    ) -> Result<u64, StoreError> {
        let dead = self.rescue_dead_workers(now, alive).await?;
        let q = format!(
            "UPDATE jobs SET {RESCUED}
             WHERE state = 'running' AND lease_expires_at < $1
               AND locked_by IS DISTINCT FROM CAST($2 AS TEXT)
               AND NOT EXISTS (SELECT 1 FROM job_leases l
                               WHERE l.worker = jobs.locked_by AND l.expires_at >= $1)"
        );
        let done = on_db!(self, |pool| sqlx::query(&q)
            .bind(Ts(now))
            .bind(alive)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(dead + done)
    }

    /// Gives running jobs back (shutdown): available again, the attempt not counted.
    pub async fn release_jobs(&self, worker: &str, ids: &[i64]) -> Result<u64, StoreError> {
        let q = format!(
            "UPDATE jobs SET state = 'available',
                attempt = CASE WHEN attempt > 0 THEN attempt - 1 ELSE 0 END,
                locked_by = NULL, lease_expires_at = NULL
             WHERE id {} AND locked_by = $2 AND state = 'running'",
            in_list(self.engine(), "$1")
        );
        Ok(on_db!(self, |pool| sqlx::query(&q)
            .bind(List(ids))
            .bind(worker)
            .execute(pool)
            .await?
            .rows_affected()))
    }
}
