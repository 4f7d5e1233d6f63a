//! A transaction on either engine. Applications join it with their own SQL (through
//! [`Tx::sqlite`] or [`Tx::postgres`]) and enqueue jobs in it: rolled back, no job exists.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Sqlite, Transaction};

use super::audit::{AuditEntry, AuditRow};
use super::jobs::{Enqueued, JobFilter, NewJob};
use super::{postgres, sqlite, Db, StoreError};

pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// One flag as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FlagRow {
    pub name: String,
    pub enabled: bool,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

macro_rules! on_tx {
    ($tx:expr, $module:ident :: $f:ident $(, $arg:expr)*) => {
        match $tx {
            Tx::Sqlite(tx) => sqlite::$module::$f(&mut *tx $(, $arg)*).await,
            Tx::Postgres(tx) => postgres::$module::$f(&mut *tx $(, $arg)*).await,
        }
    };
}

impl Db {
    /// Starts a transaction (SQLite: `BEGIN IMMEDIATE`, so it never fails to upgrade to a writer).
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    pub async fn flags(&self) -> Result<Vec<FlagRow>, StoreError> {
        let mut tx = self.begin().await?;
        let rows = on_tx!(&mut tx, admin::flags)?;
        tx.commit().await?;
        Ok(rows)
    }

    pub async fn audit_rows(
        &self,
        target: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let mut tx = self.begin().await?;
        let rows = on_tx!(&mut tx, admin::audit_rows, target, limit)?;
        tx.commit().await?;
        Ok(rows)
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.rollback().await?,
            Tx::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }

    /// The SQLite transaction, for the application's own statements.
    pub fn sqlite(&mut self) -> Option<&mut Transaction<'static, Sqlite>> {
        match self {
            Tx::Sqlite(tx) => Some(tx),
            Tx::Postgres(_) => None,
        }
    }

    /// The Postgres transaction, for the application's own statements.
    pub fn postgres(&mut self) -> Option<&mut Transaction<'static, Postgres>> {
        match self {
            Tx::Postgres(tx) => Some(tx),
            Tx::Sqlite(_) => None,
        }
    }

    pub async fn insert_jobs(
        &mut self,
        now: DateTime<Utc>,
        jobs: &[NewJob],
    ) -> Result<Vec<Enqueued>, StoreError> {
        Ok(on_tx!(self, jobs::insert_jobs_in, now, jobs)?)
    }

    pub async fn audit(
        &mut self,
        entry: &AuditEntry,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Ok(on_tx!(self, admin::insert_audit, entry, now)?)
    }

    /// Failed, discarded or cancelled jobs matching `filter` become available now. Returns ids.
    pub async fn retry_jobs(
        &mut self,
        filter: &JobFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        Ok(on_tx!(self, admin::retry_jobs, filter, now)?)
    }

    /// Waiting jobs (scheduled, available, retryable) matching `filter` are discarded.
    pub async fn discard_jobs(
        &mut self,
        filter: &JobFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        Ok(on_tx!(self, admin::discard_jobs, filter, now)?)
    }

    /// Every waiting job of `queue` is cancelled. Returns how many.
    pub async fn drain_queue(
        &mut self,
        queue: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(on_tx!(self, admin::drain_queue, queue, now)?)
    }

    pub async fn set_flag(
        &mut self,
        name: &str,
        enabled: bool,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Ok(on_tx!(self, admin::set_flag, name, enabled, actor, now)?)
    }

    /// Records the firing of schedule `name` for `fire_at`; false when it was already recorded.
    pub async fn record_tick(
        &mut self,
        name: &str,
        fire_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(on_tx!(self, admin::record_tick, name, fire_at, now)?)
    }

    /// Attaches the job a tick enqueued, or reads it back for a tick fired before.
    pub async fn tick_job(
        &mut self,
        name: &str,
        fire_at: DateTime<Utc>,
        job_id: Option<i64>,
    ) -> Result<Option<i64>, StoreError> {
        Ok(on_tx!(self, admin::tick_job, name, fire_at, job_id)?)
    }
}

impl Db {
    /// The latest recorded firing of each schedule.
    pub async fn last_ticks(
        &self,
    ) -> Result<std::collections::BTreeMap<String, DateTime<Utc>>, StoreError> {
        let mut tx = self.begin().await?;
        let rows = on_tx!(&mut tx, admin::last_ticks)?;
        tx.commit().await?;
        Ok(rows)
    }
}
