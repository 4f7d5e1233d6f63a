//! The Postgres handle, directly connected or behind a pooler in transaction mode.
//!
//! A transaction-mode pooler (PgBouncer `pool_mode = transaction`, Supavisor, Neon's pooled
//! endpoint) hands a server connection to a client for one transaction only. Outside a transaction
//! consecutive messages of one client may reach different servers, and a server keeps whatever a
//! previous client left on it. Behind such a pooler Keel therefore keeps no session state:
//!
//! - every statement runs inside a transaction: a statement issued on the pool alone is wrapped in
//!   `BEGIN` … `COMMIT` (the driver parses and executes in two round trips, which must reach the
//!   same server);
//! - each transaction starts with `DEALLOCATE ALL`, so statements prepared by earlier clients of
//!   that server cannot collide with ours, and the driver's statement cache is off, so no name is
//!   used again in a later transaction;
//! - the statement timeout (and the worker's `synchronous_commit = off`) are `SET LOCAL` in each
//!   transaction instead of start-up options, and no start-up parameter a pooler refuses is sent.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Either, Execute, Executor, PgConnection, PgPool, Postgres, Transaction};

/// A Postgres pool, and how its transactions begin when a transaction-mode pooler is in front.
#[derive(Debug, Clone)]
pub struct PgDb {
    pool: PgPool,
    /// The statement that opens a transaction behind a pooler; `None` when directly connected.
    pooled_begin: Option<Arc<str>>,
}

impl PgDb {
    pub(crate) fn direct(pool: PgPool) -> Self {
        Self {
            pool,
            pooled_begin: None,
        }
    }

    pub(crate) fn pooled(pool: PgPool, begin: String) -> Self {
        Self {
            pool,
            pooled_begin: Some(begin.into()),
        }
    }

    /// Whether a transaction-mode pooler is in front (no `LISTEN`, no session state).
    pub fn is_pooled(&self) -> bool {
        self.pooled_begin.is_some()
    }

    /// Starts a transaction; behind a pooler it also sets the per-transaction settings.
    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        match &self.pooled_begin {
            None => self.pool.begin().await,
            Some(statement) => self.pool.begin_with(statement.to_string()).await,
        }
    }

    /// A connection for several statements: a plain connection when directly connected, a
    /// transaction behind a pooler. [`Work::finish`] commits the latter.
    pub(crate) async fn work(&self) -> Result<Work, sqlx::Error> {
        Ok(match self.pooled_begin {
            None => Work::Direct(self.pool.acquire().await?),
            Some(_) => Work::Pooled(self.begin().await?),
        })
    }

    /// Runs `body` as a simple query on the pool itself, outside any transaction (`VACUUM`).
    pub(crate) async fn run_outside_transaction(&self, body: &str) -> Result<(), sqlx::Error> {
        self.pool.execute(body).await.map(|_| ())
    }
}

impl Deref for PgDb {
    type Target = PgPool;
    fn deref(&self) -> &PgPool {
        &self.pool
    }
}

/// A connection that runs several statements; see [`PgDb::work`].
pub(crate) enum Work {
    Direct(PoolConnection<Postgres>),
    Pooled(Transaction<'static, Postgres>),
}

impl Work {
    pub(crate) async fn finish(self) -> Result<(), sqlx::Error> {
        match self {
            Work::Direct(_) => Ok(()),
            Work::Pooled(tx) => tx.commit().await,
        }
    }
}

impl Deref for Work {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        match self {
            Work::Direct(conn) => conn,
            Work::Pooled(tx) => tx,
        }
    }
}

impl DerefMut for Work {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self {
            Work::Direct(conn) => conn,
            Work::Pooled(tx) => tx,
        }
    }
}

type Step = Either<PgQueryResult, PgRow>;

impl<'c> Executor<'c> for &'c PgDb {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Step, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        if !self.is_pooled() {
            return (&self.pool).fetch_many(query);
        }
        let steps = async move {
            let mut tx = self.begin().await?;
            let steps: Vec<Step> = (&mut *tx).fetch_many(query).try_collect().await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(stream::iter(steps.into_iter().map(Ok)))
        };
        stream::once(steps).try_flatten().boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        if !self.is_pooled() {
            return (&self.pool).fetch_optional(query);
        }
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let row = (&mut *tx).fetch_optional(query).await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        (&self.pool).prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<sqlx::Describe<Postgres>, sqlx::Error>>
    where
        'c: 'e,
    {
        (&self.pool).describe(sql)
    }
}
