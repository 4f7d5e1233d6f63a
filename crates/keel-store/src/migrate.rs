//! The migration runner: applies, reverts, reports and verifies the embedded migrations.
//!
//! Each migration runs in its own transaction and is recorded with its checksum in
//! `keel_migrations` (an application's own migrations, in `keel_app_migrations`: see
//! [`AppMigrations`]). Concurrent runners serialize (Postgres advisory lock, SQLite write lock) and
//! re-read the applied set inside the transaction, so a migration is never applied twice.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sqlx::{Executor, PgConnection, SqliteConnection};

pub use super::app_migrations::{AppMigrations, APP_HISTORY};
use super::migrations::{expected_objects, for_engine};
pub use super::migrations::{Migration, ObjectKind};
use super::sql::{map_rows, Cols, Ts};
use super::{postgres, sqlite, Engine, PoolerMode};

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("DATABASE_URL must start with sqlite:// or postgres://")]
    Url,
    #[error("migration {version} ({name}) was changed after it was applied (checksum differs); restore the original file and add a new migration instead")]
    Modified { version: i64, name: String },
    #[error("the database has migration {version} ({name}), which this build does not know; run a newer keel")]
    Unknown { version: i64, name: String },
    #[error("there is no migration {0} to migrate down to")]
    NoSuchVersion(i64),
    #[error("migrations did not finish within {0:?} (waiting for another process's lock counts)")]
    Timeout(Duration),
    /// An application's migrations that break the rules of [`AppMigrations::check`].
    #[error("{0}")]
    Invalid(String),
}

/// A row of `keel_migrations`.
#[derive(Debug, Clone)]
pub struct AppliedRow {
    pub version: i64,
    pub name: String,
    pub checksum: String,
    pub applied_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Applied,
    Pending,
    /// Applied, but the embedded file no longer matches its checksum.
    Modified,
    /// Applied by a build that knows more migrations than this one.
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct MigrationStatus {
    pub version: i64,
    pub name: String,
    pub state: State,
    pub applied_at: Option<DateTime<Utc>>,
}

/// What `verify` found; clean when every list is empty.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub missing: Vec<String>,
    pub pending: Vec<i64>,
    pub modified: Vec<i64>,
    pub unknown: Vec<i64>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.pending.is_empty()
            && self.modified.is_empty()
            && self.unknown.is_empty()
    }
}

/// Runs migrations against the database named by `url`, on a connection of its own.
pub struct Migrator {
    url: SecretString,
    engine: Engine,
    timeout: Duration,
    migrations: &'static [Migration],
    history: &'static str,
    pooler: PoolerMode,
}

const KEEL_HISTORY: &str = "keel_migrations";

impl Migrator {
    /// A runner of Keel's own migrations, recorded in `keel_migrations`.
    pub fn new(url: &SecretString, timeout: Duration) -> Result<Self, MigrateError> {
        let engine = super::Db::engine_of(url).ok_or(MigrateError::Url)?;
        Ok(Self {
            url: url.clone(),
            engine,
            timeout,
            migrations: for_engine(engine),
            history: KEEL_HISTORY,
            pooler: PoolerMode::Direct,
        })
    }

    /// A runner of an application's own migrations, recorded in `keel_app_migrations`. Apply
    /// Keel's first: the application's tables may refer to Keel's.
    pub fn for_app(
        url: &SecretString,
        timeout: Duration,
        app: &AppMigrations,
    ) -> Result<Self, MigrateError> {
        app.check().map_err(MigrateError::Invalid)?;
        let keel = Self::new(url, timeout)?;
        Ok(Self {
            migrations: app.for_engine(keel.engine),
            history: APP_HISTORY,
            ..keel
        })
    }

    /// The history table this runner records in: `keel_migrations` or `keel_app_migrations`.
    pub fn history(&self) -> &'static str {
        self.history
    }

    /// What stands in front of the database at the URL (Postgres). Behind a transaction-mode
    /// pooler a run is one transaction holding a transaction-level advisory lock, each migration
    /// within it under a savepoint, since a session lock would not stay with one server.
    pub fn with_pooler(mut self, pooler: PoolerMode) -> Self {
        self.pooler = pooler;
        self
    }

    /// The migrations this runner knows, in version order.
    pub fn migrations(&self) -> &'static [Migration] {
        self.migrations
    }

    /// Applies every pending migration; returns those applied (or, dry, those that would be).
    pub async fn up(&self, dry_run: bool) -> Result<Vec<&'static Migration>, MigrateError> {
        self.bounded(async {
            let mut session = Session::open(self).await?;
            let result = self.up_in(&mut session, dry_run).await;
            session.close().await;
            result
        })
        .await
    }

    /// Reverts every applied migration above `target`, newest first.
    pub async fn down(
        &self,
        target: i64,
        dry_run: bool,
    ) -> Result<Vec<&'static Migration>, MigrateError> {
        if target != 0 && !self.migrations().iter().any(|m| m.version == target) {
            return Err(MigrateError::NoSuchVersion(target));
        }
        self.bounded(async {
            let mut session = Session::open(self).await?;
            let result = self.down_in(&mut session, target, dry_run).await;
            session.close().await;
            result
        })
        .await
    }

    pub async fn status(&self) -> Result<Vec<MigrationStatus>, MigrateError> {
        self.bounded(async {
            let mut session = Session::open(self).await?;
            let applied = session.applied().await;
            session.close().await;
            Ok(status_of(self.migrations(), &applied?))
        })
        .await
    }

    /// Checks that every migration is applied unchanged and every expected table and index exists.
    pub async fn verify(&self) -> Result<VerifyReport, MigrateError> {
        self.bounded(async {
            let mut session = Session::open(self).await?;
            let result = async {
                let applied = session.applied().await?;
                let present: BTreeSet<_> = session.objects().await?.into_iter().collect();
                Ok::<_, MigrateError>((applied, present))
            }
            .await;
            session.close().await;
            let (applied, present) = result?;
            let mut report = VerifyReport::default();
            for s in status_of(self.migrations(), &applied) {
                match s.state {
                    State::Applied => {}
                    State::Pending => report.pending.push(s.version),
                    State::Modified => report.modified.push(s.version),
                    State::Unknown => report.unknown.push(s.version),
                }
            }
            let mut expected = expected_objects(
                self.migrations()
                    .iter()
                    .filter(|m| applied.iter().any(|a| a.version == m.version)),
            );
            expected.remove(&(ObjectKind::Table, KEEL_HISTORY.to_string()));
            expected.insert((ObjectKind::Table, self.history.to_string()));
            report.missing = expected
                .difference(&present)
                .map(|(kind, name)| format!("{} {name}", kind.as_str()))
                .collect();
            Ok(report)
        })
        .await
    }

    async fn up_in(
        &self,
        session: &mut Session,
        dry_run: bool,
    ) -> Result<Vec<&'static Migration>, MigrateError> {
        let known = self.migrations();
        if dry_run {
            let applied = session.applied().await?;
            check_applied(known, &applied)?;
            return Ok(pending(known, &applied));
        }
        let mut done = Vec::new();
        loop {
            session.begin().await?;
            let step = self.up_step(session).await;
            match step {
                Ok(Some(m)) => {
                    session.commit().await?;
                    tracing::info!(version = m.version, name = m.name, "migration applied");
                    done.push(m);
                }
                Ok(None) => {
                    session.rollback().await?;
                    return Ok(done);
                }
                Err(e) => {
                    session.rollback().await?;
                    return Err(e);
                }
            }
        }
    }

    /// Inside a transaction: applies the first pending migration, if any.
    async fn up_step(
        &self,
        session: &mut Session,
    ) -> Result<Option<&'static Migration>, MigrateError> {
        let known = self.migrations();
        let applied = session.applied().await?;
        check_applied(known, &applied)?;
        let Some(next) = pending(known, &applied).into_iter().next() else {
            return Ok(None);
        };
        session.apply(next).await?;
        Ok(Some(next))
    }

    async fn down_in(
        &self,
        session: &mut Session,
        target: i64,
        dry_run: bool,
    ) -> Result<Vec<&'static Migration>, MigrateError> {
        let known = self.migrations();
        if dry_run {
            let applied = session.applied().await?;
            return revertible(known, &applied, target);
        }
        let mut done = Vec::new();
        loop {
            session.begin().await?;
            let step = self.down_step(session, target).await;
            match step {
                Ok(Some(m)) => {
                    session.commit().await?;
                    tracing::info!(version = m.version, name = m.name, "migration reverted");
                    done.push(m);
                }
                Ok(None) => {
                    session.rollback().await?;
                    return Ok(done);
                }
                Err(e) => {
                    session.rollback().await?;
                    return Err(e);
                }
            }
        }
    }

    /// Inside a transaction: reverts the newest applied migration above `target`, if any.
    async fn down_step(
        &self,
        session: &mut Session,
        target: i64,
    ) -> Result<Option<&'static Migration>, MigrateError> {
        let applied = session.applied().await?;
        let Some(newest) = revertible(self.migrations(), &applied, target)?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        session.revert(newest).await?;
        Ok(Some(newest))
    }

    /// Bounds `work` by the migration timeout. Boxed so the futures of the public methods are
    /// `Send` with concrete lifetimes (callers spawn them).
    fn bounded<'a, T: Send + 'a>(
        &self,
        work: impl Future<Output = Result<T, MigrateError>> + Send + 'a,
    ) -> Pin<Box<dyn Future<Output = Result<T, MigrateError>> + Send + 'a>> {
        let timeout = self.timeout;
        Box::pin(async move {
            tokio::time::timeout(timeout, work)
                .await
                .unwrap_or(Err(MigrateError::Timeout(timeout)))
        })
    }
}

fn check_applied(known: &[Migration], applied: &[AppliedRow]) -> Result<(), MigrateError> {
    for row in applied {
        match known.iter().find(|m| m.version == row.version) {
            None => {
                return Err(MigrateError::Unknown {
                    version: row.version,
                    name: row.name.clone(),
                })
            }
            Some(m) if m.checksum() != row.checksum => {
                return Err(MigrateError::Modified {
                    version: row.version,
                    name: row.name.clone(),
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn pending(known: &'static [Migration], applied: &[AppliedRow]) -> Vec<&'static Migration> {
    known
        .iter()
        .filter(|m| !applied.iter().any(|a| a.version == m.version))
        .collect()
}

/// Applied migrations above `target`, newest first; an unknown one above it is an error.
fn revertible(
    known: &'static [Migration],
    applied: &[AppliedRow],
    target: i64,
) -> Result<Vec<&'static Migration>, MigrateError> {
    if let Some(row) = applied
        .iter()
        .find(|a| a.version > target && !known.iter().any(|m| m.version == a.version))
    {
        return Err(MigrateError::Unknown {
            version: row.version,
            name: row.name.clone(),
        });
    }
    Ok(known
        .iter()
        .rev()
        .filter(|m| m.version > target && applied.iter().any(|a| a.version == m.version))
        .collect())
}

fn status_of(known: &[Migration], applied: &[AppliedRow]) -> Vec<MigrationStatus> {
    let mut out: Vec<MigrationStatus> = known
        .iter()
        .map(|m| {
            let row = applied.iter().find(|a| a.version == m.version);
            let state = match row {
                None => State::Pending,
                Some(r) if r.checksum != m.checksum() => State::Modified,
                Some(_) => State::Applied,
            };
            MigrationStatus {
                version: m.version,
                name: m.name.to_string(),
                state,
                applied_at: row.map(|r| r.applied_at),
            }
        })
        .collect();
    for row in applied {
        if !known.iter().any(|m| m.version == row.version) {
            out.push(MigrationStatus {
                version: row.version,
                name: row.name.clone(),
                state: State::Unknown,
                applied_at: Some(row.applied_at),
            });
        }
    }
    out.sort_by_key(|s| s.version);
    out
}

/// One connection that owns the migration lock for its lifetime, on one history table.
struct Session {
    conn: Conn,
    history: &'static str,
}

enum Conn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection, PoolerMode),
}

/// Calls the engine's primitive. Boxed as `Send` here, where lifetimes are concrete, so that the
/// runner's futures stay `Send` (sqlx executors are generic over lifetimes).
macro_rules! dispatch {
    ($self:ident, $f:ident $(, $arg:expr)*) => {{
        let future: Pin<Box<dyn Future<Output = Result<_, sqlx::Error>> + Send + '_>> = match &mut $self.conn {
            Conn::Sqlite(c) => Box::pin(sqlite::migrate::$f(c $(, $arg)*)),
            Conn::Postgres(c, _) => Box::pin(postgres::migrate::$f(c $(, $arg)*)),
        };
        future.await
    }};
}

/// Runs `$body` (one text for both engines) with `$c` bound to the session's connection, boxed as
/// `Send` like [`dispatch!`].
macro_rules! on_session {
    ($self:ident, |$c:ident| $body:expr) => {{
        let future: Pin<Box<dyn Future<Output = Result<_, sqlx::Error>> + Send + '_>> =
            match &mut $self.conn {
                Conn::Sqlite($c) => Box::pin(async move { $body }),
                Conn::Postgres($c, _) => Box::pin(async move { $body }),
            };
        future.await
    }};
}

/// The statements on a history table (one of two fixed names, never input).
fn applied_sql(history: &str) -> String {
    format!("SELECT version, name, checksum, applied_at FROM {history} ORDER BY version")
}

fn record_sql(history: &str) -> String {
    format!("INSERT INTO {history} (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)")
}

fn forget_sql(history: &str) -> String {
    format!("DELETE FROM {history} WHERE version = $1")
}

fn applied_row(r: &impl Cols) -> Result<AppliedRow, sqlx::Error> {
    Ok(AppliedRow {
        version: r.int("version")?,
        name: r.text("name")?,
        checksum: r.text("checksum")?,
        applied_at: r.at("applied_at")?,
    })
}

impl Session {
    async fn open(m: &Migrator) -> Result<Session, MigrateError> {
        let url = m.url.expose_secret();
        let opening: Pin<Box<dyn Future<Output = Result<Conn, sqlx::Error>> + Send + '_>> =
            match m.engine {
                Engine::Sqlite => Box::pin(async move {
                    sqlite::migrate::open(url, m.timeout)
                        .await
                        .map(Conn::Sqlite)
                }),
                Engine::Postgres => Box::pin(async move {
                    let pooler = m.pooler;
                    postgres::migrate::open(url, pooler)
                        .await
                        .map(|c| Conn::Postgres(c, pooler))
                }),
            };
        let mut session = Session {
            conn: opening.await?,
            history: m.history,
        };
        session.ensure_table().await?;
        Ok(session)
    }

    async fn close(self) {
        let closing: Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send>> = match self.conn
        {
            Conn::Sqlite(c) => Box::pin(sqlx::Connection::close(c)),
            Conn::Postgres(c, pooler) => Box::pin(postgres::migrate::close(c, pooler)),
        };
        let result = closing.await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "closing the migration connection failed");
        }
    }

    async fn ensure_table(&mut self) -> Result<(), sqlx::Error> {
        let history = self.history;
        dispatch!(self, ensure_table, history)
    }
    async fn begin(&mut self) -> Result<(), sqlx::Error> {
        match self.conn {
            Conn::Postgres(_, PoolerMode::Transaction) => {
                self.run(postgres::migrate::Step::Begin).await
            }
            _ => dispatch!(self, begin),
        }
    }
    async fn commit(&mut self) -> Result<(), sqlx::Error> {
        self.run(postgres::migrate::Step::Commit).await
    }
    async fn rollback(&mut self) -> Result<(), sqlx::Error> {
        self.run(postgres::migrate::Step::Rollback).await
    }
    /// Begins, commits or rolls back one migration's transaction (a savepoint behind a pooler).
    async fn run(&mut self, step: postgres::migrate::Step) -> Result<(), sqlx::Error> {
        let statement = match &self.conn {
            Conn::Sqlite(_) => step.direct(),
            Conn::Postgres(_, pooler) => step.statement(*pooler),
        };
        on_session!(self, |c| c.execute(statement).await.map(|_| ()))
    }
    async fn applied(&mut self) -> Result<Vec<AppliedRow>, sqlx::Error> {
        let sql = applied_sql(self.history);
        on_session!(self, |c| map_rows(
            &sqlx::query(&sql).fetch_all(&mut *c).await?,
            applied_row
        ))
    }
    async fn apply(&mut self, m: &Migration) -> Result<(), sqlx::Error> {
        let now = Ts(Utc::now());
        let sql = record_sql(self.history);
        on_session!(self, |c| {
            c.execute(m.up).await?;
            sqlx::query(&sql)
                .bind(m.version)
                .bind(m.name)
                .bind(m.checksum())
                .bind(now)
                .execute(&mut *c)
                .await
                .map(|_| ())
        })
    }
    async fn revert(&mut self, m: &Migration) -> Result<(), sqlx::Error> {
        let sql = forget_sql(self.history);
        on_session!(self, |c| {
            c.execute(m.down).await?;
            sqlx::query(&sql)
                .bind(m.version)
                .execute(&mut *c)
                .await
                .map(|_| ())
        })
    }
    async fn objects(&mut self) -> Result<Vec<(ObjectKind, String)>, sqlx::Error> {
        dispatch!(self, objects)
    }
}
