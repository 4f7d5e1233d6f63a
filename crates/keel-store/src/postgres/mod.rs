//! Postgres: a pool with a statement timeout. Several processes share it safely: migrations take
//! an advisory lock, job claims use `FOR UPDATE SKIP LOCKED`, billing changes about one owner take
//! a transaction-scoped advisory lock. Behind a transaction-mode pooler see `pooled.rs`.

pub(crate) mod jobs;
pub(crate) mod migrate;
pub(crate) mod pooled;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgConnection;

pub use pooled::PgDb;

use super::{DatabaseSettings, PoolerMode, StoreError};

pub(crate) fn connect_lazy(url: &str, settings: &DatabaseSettings) -> Result<PgDb, StoreError> {
    pool(url, settings, settings.pool_size, PoolRole::Main)
}

/// The pool a worker's jobs, heartbeats and rescues go through. Its commits do not wait for the
/// WAL flush (`synchronous_commit = off`): a Postgres crash can forget the last moments of state
/// changes, and those jobs then run again (delivery is at least once). Enqueues never go through
/// this pool, so an accepted job is always durable.
pub(crate) fn connect_lazy_worker(
    url: &str,
    settings: &DatabaseSettings,
    size: u32,
) -> Result<PgDb, StoreError> {
    pool(url, settings, size, PoolRole::Worker)
}

/// The pool a worker's runners write outcomes and claim jobs through, one connection per claim
/// lane: commits as on the worker pool, and on a direct connection each statement is planned once
/// per connection (`plan_cache_mode = force_generic_plan`) without sequential scans
/// (`enable_seqscan = off`): planning the claim cost about as much as running it, and a
/// plan made while the table was small keeps using the indexes as it grows, where a plan that
/// scans the table would stay until the next ANALYZE.
pub(crate) fn connect_lazy_claims(
    url: &str,
    settings: &DatabaseSettings,
    size: u32,
) -> Result<PgDb, StoreError> {
    pool(url, settings, size, PoolRole::Claims)
}

/// What a pool is for, which sets its session.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PoolRole {
    Main,
    Worker,
    Claims,
}

fn pool(
    url: &str,
    settings: &DatabaseSettings,
    size: u32,
    role: PoolRole,
) -> Result<PgDb, StoreError> {
    let timeout_ms = settings.statement_timeout.as_millis().to_string();
    let async_commit = role != PoolRole::Main;
    let options = connect_options(url, settings.pooler)?.application_name(if async_commit {
        "keel-worker"
    } else {
        "keel"
    });
    let pool_options = crate::idle_ping::ping_when_idle(
        PgPoolOptions::new()
            .max_connections(size)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(10)),
    );
    Ok(match settings.pooler {
        PoolerMode::Direct => {
            let mut parameters = vec![("statement_timeout", timeout_ms.as_str())];
            if async_commit {
                parameters.push(("synchronous_commit", "off"));
            }
            if role == PoolRole::Claims {
                parameters.push(("plan_cache_mode", "force_generic_plan"));
                parameters.push(("enable_seqscan", "off"));
            }
            PgDb::direct(pool_options.connect_lazy_with(options.options(parameters)))
        }
        // Behind the pooler no statement is prepared for long: each is planned for its values.
        PoolerMode::Transaction => {
            let mut begin = format!("BEGIN; SET LOCAL statement_timeout = {timeout_ms}; ");
            if async_commit {
                begin.push_str("SET LOCAL synchronous_commit = off; ");
            }
            begin.push_str("DEALLOCATE ALL");
            PgDb::pooled(pool_options.connect_lazy_with(options), begin)
        }
    })
}

/// The connect options for `url`. Behind a transaction-mode pooler: no start-up parameter a pooler
/// refuses (`extra_float_digits`), and no statement cache (a cached name would outlive the
/// transaction, and the server it was prepared on).
pub(crate) fn connect_options(
    url: &str,
    pooler: PoolerMode,
) -> Result<PgConnectOptions, StoreError> {
    let options =
        PgConnectOptions::from_str(url).map_err(|e| StoreError::Url(redact(&e.to_string())))?;
    Ok(match pooler {
        PoolerMode::Direct => options,
        PoolerMode::Transaction => options.extra_float_digits(None).statement_cache_capacity(0),
    })
}

/// The advisory lock's name for changes about one provider-side owner.
pub(crate) fn billing_lock_name(
    provider: keel_domain::billing::model::Provider,
    subject: &str,
) -> String {
    format!("keel.billing:{}:{subject}", provider.as_str())
}

/// Holds an advisory lock on `name` until the transaction `conn` is in ends.
pub(crate) async fn lock_until_commit(
    conn: &mut PgConnection,
    name: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7261))")
        .bind(name)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Parse errors may quote the URL; keep only the message before any quoted part.
pub(crate) fn redact(message: &str) -> String {
    message
        .split(['"', '\''])
        .next()
        .unwrap_or("invalid URL")
        .trim()
        .to_string()
}
