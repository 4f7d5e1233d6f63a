//! User rows: created on first sight of a verified token, `last_seen_at` refreshed at most once a
//! minute.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::jobs::{from_ts, ts};
use super::{Db, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRow {
    pub id: String,
    pub tenant_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

impl Db {
    /// Creates the user, or records that they were seen (at most once a minute; a new tenant is
    /// always recorded). Safe when many requests of a new user arrive at once.
    pub async fn touch_user(
        &self,
        id: &str,
        tenant_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<UserRow, StoreError> {
        let touched = match self {
            Db::Sqlite(pool) => sqlx::query(
                "INSERT INTO users (id, tenant_id, created_at, last_seen_at) VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at,
                    tenant_id = COALESCE(excluded.tenant_id, users.tenant_id)
                 WHERE users.last_seen_at < excluded.last_seen_at - 60000
                    OR users.tenant_id IS NOT COALESCE(excluded.tenant_id, users.tenant_id)
                 RETURNING id, tenant_id, created_at, last_seen_at",
            )
            .bind(id)
            .bind(tenant_id)
            .bind(ts(now))
            .fetch_optional(pool)
            .await?
            .map(|r| sqlite_row(&r))
            .transpose()?,
            Db::Postgres(pool) => sqlx::query(
                "INSERT INTO users (id, tenant_id, created_at, last_seen_at) VALUES ($1, $2, $3, $3)
                 ON CONFLICT (id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at,
                    tenant_id = COALESCE(EXCLUDED.tenant_id, users.tenant_id)
                 WHERE users.last_seen_at < EXCLUDED.last_seen_at - interval '60 seconds'
                    OR users.tenant_id IS DISTINCT FROM COALESCE(EXCLUDED.tenant_id, users.tenant_id)
                 RETURNING id, tenant_id, created_at, last_seen_at",
            )
            .bind(id)
            .bind(tenant_id)
            .bind(now)
            .fetch_optional(pool)
            .await?
            .map(|r| pg_row(&r))
            .transpose()?,
        };
        match touched {
            Some(row) => Ok(row),
            None => self
                .user(id)
                .await?
                .ok_or(StoreError::Database(sqlx::Error::RowNotFound)),
        }
    }

    pub async fn user(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        Ok(match self {
            Db::Sqlite(pool) => sqlx::query(
                "SELECT id, tenant_id, created_at, last_seen_at FROM users WHERE id = ?1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
            .map(|r| sqlite_row(&r))
            .transpose()?,
            Db::Postgres(pool) => sqlx::query(
                "SELECT id, tenant_id, created_at, last_seen_at FROM users WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
            .map(|r| pg_row(&r))
            .transpose()?,
        })
    }
}

fn sqlite_row(r: &sqlx::sqlite::SqliteRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        created_at: from_ts(r.try_get("created_at")?),
        last_seen_at: from_ts(r.try_get("last_seen_at")?),
    })
}

fn pg_row(r: &sqlx::postgres::PgRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        created_at: r.try_get("created_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
    })
}
