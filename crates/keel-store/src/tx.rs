//! A transaction on either engine. Applications join it with their own SQL (through
//! [`Tx::sqlite`] or [`Tx::postgres`]) and enqueue jobs in it: rolled back, no job exists.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Sqlite, Transaction};

use super::jobs::{Enqueued, NewJob};
use super::{postgres, sqlite, Db, Engine, StoreError};

pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
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
            Db::Postgres(db) => Tx::Postgres(db.begin().await?),
        })
    }
}

impl Tx {
    /// The engine this transaction runs on.
    pub fn engine(&self) -> Engine {
        match self {
            Tx::Sqlite(_) => Engine::Sqlite,
            Tx::Postgres(_) => Engine::Postgres,
        }
    }

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
}
