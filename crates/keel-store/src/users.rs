//! User rows: created on first sight of a verified token, `last_seen_at` refreshed at most once a
//! minute.

use chrono::{DateTime, Utc};

use super::sql::{on_db, on_tx, Cols, Ts};
use super::{Db, StoreError, Tx};

pub use keel_domain::users::UserRow;

fn user_row(r: &impl Cols) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: r.text("id")?,
        tenant_id: r.text_opt("tenant_id")?,
        created_at: r.at("created_at")?,
        last_seen_at: r.at("last_seen_at")?,
    })
}

/// Creates the user, or records that they were seen; `created` says the row is new.
const TOUCH: &str =
    "INSERT INTO users (id, tenant_id, created_at, last_seen_at) VALUES ($1, $2, $3, $3)
     ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at,
        tenant_id = COALESCE(excluded.tenant_id, users.tenant_id)
     WHERE users.last_seen_at < $4
        OR users.tenant_id IS DISTINCT FROM COALESCE(excluded.tenant_id, users.tenant_id)
     RETURNING id, tenant_id, created_at, last_seen_at, (created_at = $3) AS created";

const USER: &str = "SELECT id, tenant_id, created_at, last_seen_at FROM users WHERE id = $1";

impl Tx {
    /// [`Db::touch_user`] in this transaction; true beside the row when this created it.
    pub async fn touch_user(
        &mut self,
        id: &str,
        tenant_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(UserRow, bool), StoreError> {
        let seen_before = now - chrono::Duration::seconds(60);
        let touched = on_tx!(self, |c| sqlx::query(TOUCH)
            .bind(id)
            .bind(tenant_id)
            .bind(Ts(now))
            .bind(Ts(seen_before))
            .fetch_optional(&mut **c)
            .await?
            .map(|r| Ok::<_, sqlx::Error>((user_row(&r)?, r.flag("created")?)))
            .transpose()?);
        if let Some(touched) = touched {
            return Ok(touched);
        }
        let row = on_tx!(self, |c| sqlx::query(USER)
            .bind(id)
            .fetch_optional(&mut **c)
            .await?
            .map(|r| user_row(&r))
            .transpose()?);
        row.map(|r| (r, false))
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }
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
        let seen_before = now - chrono::Duration::seconds(60);
        let touched = on_db!(self, |pool| sqlx::query(TOUCH)
            .bind(id)
            .bind(tenant_id)
            .bind(Ts(now))
            .bind(Ts(seen_before))
            .fetch_optional(pool)
            .await?
            .map(|r| user_row(&r))
            .transpose()?);
        match touched {
            Some(row) => Ok(row),
            None => self
                .user(id)
                .await?
                .ok_or(StoreError::Database(sqlx::Error::RowNotFound)),
        }
    }

    pub async fn user(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        Ok(on_db!(self, |pool| sqlx::query(USER)
            .bind(id)
            .fetch_optional(pool)
            .await?
            .map(|r| user_row(&r))
            .transpose()?))
    }
}
