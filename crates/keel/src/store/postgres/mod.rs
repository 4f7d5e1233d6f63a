//! Postgres: a pool with a statement timeout. Several processes share it safely: migrations take
//! an advisory lock, job claims use `FOR UPDATE SKIP LOCKED`.

pub(crate) mod admin;
pub(crate) mod jobs;
pub(crate) mod migrate;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::StoreError;
use crate::config::DatabaseSettings;

pub(crate) fn connect_lazy(url: &str, settings: &DatabaseSettings) -> Result<PgPool, StoreError> {
    let timeout_ms = settings.statement_timeout.as_millis().to_string();
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Url(redact(&e.to_string())))?
        .options([("statement_timeout", timeout_ms.as_str())])
        .application_name("keel");
    Ok(PgPoolOptions::new()
        .max_connections(settings.pool_size)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(options))
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
