//! Sessions of the operations console, keyed by a hash of the session id (the id itself lives
//! only in the operator's cookie).

use chrono::{DateTime, Utc};

use super::sql::{on_db, Cols, Ts};
use super::{Db, StoreError};

/// A signed-in console session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub actor: String,
    pub read_only: bool,
    pub expires_at: DateTime<Utc>,
}

fn session_row(r: &impl Cols) -> Result<ConsoleSession, sqlx::Error> {
    Ok(ConsoleSession {
        actor: r.text("actor")?,
        read_only: r.flag("read_only")?,
        expires_at: r.at("expires_at")?,
    })
}

impl Db {
    /// Stores a session under `id_hash`, and forgets sessions that expired before `now`.
    pub async fn insert_console_session(
        &self,
        id_hash: &str,
        session: &ConsoleSession,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let purge = "DELETE FROM console_sessions WHERE expires_at < $1";
        let insert =
            "INSERT INTO console_sessions (id_hash, actor, read_only, created_at, expires_at)
                      VALUES ($1, $2, $3, $4, $5)";
        on_db!(self, |pool| {
            sqlx::query(purge).bind(Ts(now)).execute(pool).await?;
            sqlx::query(insert)
                .bind(id_hash)
                .bind(&session.actor)
                .bind(session.read_only)
                .bind(Ts(now))
                .bind(Ts(session.expires_at))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The session stored under `id_hash`, unless it expired by `now`.
    pub async fn console_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let q = "SELECT actor, read_only, expires_at FROM console_sessions
                 WHERE id_hash = $1 AND expires_at > $2";
        Ok(on_db!(self, |pool| sqlx::query(q)
            .bind(id_hash)
            .bind(Ts(now))
            .fetch_optional(pool)
            .await?
            .map(|r| session_row(&r))
            .transpose()?))
    }

    /// Ends the session stored under `id_hash`.
    pub async fn delete_console_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let q = "DELETE FROM console_sessions WHERE id_hash = $1";
        on_db!(self, |pool| {
            sqlx::query(q).bind(id_hash).execute(pool).await?;
        });
        Ok(())
    }
}
