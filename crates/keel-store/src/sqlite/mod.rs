//! SQLite: WAL, a busy timeout, foreign keys on. One writer at a time; writers that must not
//! interleave take `BEGIN IMMEDIATE`.

pub(crate) mod jobs;
pub(crate) mod migrate;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::{DatabaseSettings, StoreError};

pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn options(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    Ok(SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Url(e.to_string()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true))
}

pub(crate) fn connect_lazy(
    url: &str,
    settings: &DatabaseSettings,
) -> Result<SqlitePool, StoreError> {
    if let Some(dir) = file_path(url).and_then(|p| p.parent().map(|d| d.to_path_buf())) {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(&dir)
                .map_err(|e| StoreError::Url(format!("cannot create {}: {e}", dir.display())))?;
        }
    }
    Ok(crate::idle_ping::ping_when_idle(
        SqlitePoolOptions::new()
            .max_connections(settings.pool_size.max(2))
            .acquire_timeout(Duration::from_secs(15)),
    )
    .connect_lazy_with(options(url)?))
}

fn file_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| path.into())
}

/// A timestamp as SQLite stores it: milliseconds since the epoch.
pub(crate) fn ts(d: DateTime<Utc>) -> i64 {
    d.timestamp_millis()
}

/// A stored SQLite timestamp.
pub(crate) fn from_ts(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
}
