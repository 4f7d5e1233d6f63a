//! Keel's store: one database handle over two engines. SQLite is the embedded default; Postgres is for
//! several processes or machines. Most operations are one statement text for both engines through
//! the dialect layer in `sql.rs`; `sqlite/` and `postgres/` hold what differs (job claims, notify,
//! locks, migrations).
//!
//! The store depends on `keel-domain` and on nothing above it, so an import that runs back up
//! does not compile:
//!
//! ```compile_fail
//! // The store cannot reach the services, HTTP or configuration: `keel` is not its dependency.
//! use keel::services::Services;
//! ```

mod admin;
pub mod app_events;
mod app_migrations;
pub use keel_domain::audit;
pub mod billing;
pub mod billing_ingest;
mod billing_reads;
mod breakers;
pub mod console;
mod error;
mod idle_ping;
mod job_insert;
mod job_stats;
pub mod jobs;
mod leases;
pub mod migrate;
mod migrations;
pub(crate) mod postgres;
pub mod privacy;
pub(crate) mod sql;
pub(crate) mod sqlite;
pub mod storage;
mod tx;
pub mod users;

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sqlx::SqlitePool;

pub use admin::{Firing, FlagRow};
pub use error::StoreError;
pub use postgres::PgDb;
pub use tx::Tx;

/// A driver's error message without any quoted part, which may hold the connection URL.
pub fn redact(message: &str) -> String {
    postgres::redact(message)
}

/// The connect options Keel opens a SQLite file with (WAL, busy timeout, foreign keys).
pub fn sqlite_options(url: &str) -> Result<sqlx::sqlite::SqliteConnectOptions, StoreError> {
    sqlite::options(url)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// What stands between Keel and Postgres (`DATABASE_POOLER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolerMode {
    /// Postgres itself, or a pooler in session mode: a connection is one server session.
    #[default]
    Direct,
    /// A pooler in transaction mode (PgBouncer `pool_mode = transaction`, Supavisor, Neon's
    /// pooled endpoint): a server is ours for one transaction only.
    Transaction,
}

impl PoolerMode {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "none" => Some(Self::Direct),
            "transaction" => Some(Self::Transaction),
            _ => None,
        }
    }
}

/// The database section of the settings: where the database is and how the pool behaves.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub pool_size: u32,
    pub statement_timeout: Duration,
    pub migrate_on_start: bool,
    pub migration_timeout: Duration,
    /// What stands between Keel and Postgres at `url`.
    pub pooler: PoolerMode,
    /// A URL that reaches Postgres without the pooler, for migrations (`DATABASE_DIRECT_URL`).
    pub direct_url: Option<SecretString>,
}

impl DatabaseSettings {
    /// The URL migrations run through, and what stands in front of it: the direct URL when one is
    /// set, else `url`.
    pub fn migration_target(&self) -> (&SecretString, PoolerMode) {
        match &self.direct_url {
            Some(direct) => (direct, PoolerMode::Direct),
            None => (&self.url, self.pooler),
        }
    }

    /// The URL for work that needs a session of its own (`pg_dump`, `pg_restore`): the direct URL
    /// when one is set, else `url`.
    pub fn session_url(&self) -> &SecretString {
        self.direct_url.as_ref().unwrap_or(&self.url)
    }
}

/// A pool on one engine. Cloning is cheap.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgDb),
}

/// Checks that `url` names an engine and parses as its connection options. The message never
/// quotes the URL, which may hold a password.
pub fn check_url(url: &str) -> Result<(), String> {
    use std::str::FromStr;
    if url.starts_with("sqlite:") {
        sqlx::sqlite::SqliteConnectOptions::from_str(url)
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "is not a valid SQLite URL: {}",
                    postgres::redact(&e.to_string())
                )
            })
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        sqlx::postgres::PgConnectOptions::from_str(url)
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "is not a valid Postgres URL: {}",
                    postgres::redact(&e.to_string())
                )
            })
    } else {
        Err("must start with sqlite:// or postgres:// (or postgresql://)".into())
    }
}

/// The Postgres `NOTIFY` channel that announces new jobs (the payload is the queue).
pub fn postgres_channel() -> &'static str {
    postgres::jobs::CHANNEL
}

impl Db {
    /// Builds the pool without connecting; the first use connects.
    pub fn connect_lazy(settings: &DatabaseSettings) -> Result<Db, StoreError> {
        let url = settings.url.expose_secret();
        match Self::engine_of(&settings.url) {
            Some(Engine::Sqlite) => sqlite::connect_lazy(url, settings).map(Db::Sqlite),
            Some(Engine::Postgres) => postgres::connect_lazy(url, settings).map(Db::Postgres),
            None => Err(StoreError::Url(
                "DATABASE_URL must start with sqlite:// or postgres://".into(),
            )),
        }
    }

    /// The pool a worker's jobs, heartbeats and rescues go through (see
    /// `postgres::connect_lazy_worker`); on SQLite, this pool.
    pub fn worker_pool(&self, settings: &DatabaseSettings, size: u32) -> Result<Db, StoreError> {
        match self {
            Db::Sqlite(_) => Ok(self.clone()),
            Db::Postgres(_) => {
                postgres::connect_lazy_worker(settings.url.expose_secret(), settings, size)
                    .map(Db::Postgres)
            }
        }
    }

    /// The pool a worker's runners claim jobs and write their outcomes through, a connection per
    /// claim lane (see `postgres::connect_lazy_claims`); on SQLite, this pool.
    pub fn claims_pool(&self, settings: &DatabaseSettings, size: u32) -> Result<Db, StoreError> {
        match self {
            Db::Sqlite(_) => Ok(self.clone()),
            Db::Postgres(_) => {
                postgres::connect_lazy_claims(settings.url.expose_secret(), settings, size)
                    .map(Db::Postgres)
            }
        }
    }

    /// The engine a database URL names, if any.
    pub fn engine_of(url: &secrecy::SecretString) -> Option<Engine> {
        let url = url.expose_secret();
        if url.starts_with("sqlite:") {
            Some(Engine::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Engine::Postgres)
        } else {
            None
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            Db::Sqlite(_) => Engine::Sqlite,
            Db::Postgres(_) => Engine::Postgres,
        }
    }

    /// One round trip, bounded by `timeout`; returns how long it took.
    pub async fn ping(&self, timeout: Duration) -> Result<Duration, StoreError> {
        let started = Instant::now();
        let query = async {
            match self {
                Db::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
                Db::Postgres(db) => sqlx::query("SELECT 1").execute(db).await.map(|_| ()),
            }
        };
        match tokio::time::timeout(timeout, query).await {
            Ok(result) => result.map(|()| started.elapsed()).map_err(StoreError::from),
            Err(_) => Err(StoreError::Timeout(timeout)),
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

#[cfg(test)]
mod layering {
    /// The crates a manifest's `[dependencies]` name.
    fn dependencies(manifest: &str) -> Vec<String> {
        manifest
            .split("\n[")
            .find(|section| section.starts_with("dependencies]"))
            .map(|section| {
                section
                    .lines()
                    .skip(1)
                    .filter_map(|line| line.split(['.', ' ', '=']).next())
                    .filter(|name| !name.is_empty() && !name.starts_with('#'))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn the_store_knows_only_the_domain_and_the_domain_knows_no_keel_crate() {
        let store = dependencies(include_str!("../Cargo.toml"));
        let domain = dependencies(include_str!("../../keel-domain/Cargo.toml"));
        assert!(store.contains(&"sqlx".to_string()), "{store:?}");
        let keel_crates = |deps: &[String]| -> Vec<String> {
            deps.iter()
                .filter(|d| d.starts_with("keel"))
                .cloned()
                .collect()
        };
        assert_eq!(keel_crates(&store), ["keel-domain"]);
        assert!(keel_crates(&domain).is_empty(), "{domain:?}");
    }
}
