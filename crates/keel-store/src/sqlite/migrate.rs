//! Migration primitives on one SQLite connection. `BEGIN IMMEDIATE` takes the write lock, so two
//! processes migrating at once apply each migration once.

use std::time::Duration;

use sqlx::{Connection, Executor, Row, SqliteConnection};

use crate::migrations::ObjectKind;

pub(crate) async fn open(url: &str, wait: Duration) -> Result<SqliteConnection, sqlx::Error> {
    let options = super::options(url)
        .map_err(|e| sqlx::Error::Configuration(e.to_string().into()))?
        .busy_timeout(wait);
    SqliteConnection::connect_with(&options).await
}

/// Creates the history table under the write lock. Without it, runners starting together could
/// read the schema, see another runner's commit land, and fail at once with `SQLITE_BUSY` (a
/// stale snapshot does not wait for the busy timeout).
pub(crate) async fn ensure_table(
    conn: &mut SqliteConnection,
    history: &str,
) -> Result<(), sqlx::Error> {
    conn.execute("BEGIN IMMEDIATE").await?;
    let created = conn
        .execute(
            format!(
                "CREATE TABLE IF NOT EXISTS {history} (
                version INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                checksum TEXT NOT NULL,
                applied_at INTEGER NOT NULL
            )"
            )
            .as_str(),
        )
        .await;
    match created {
        Ok(_) => conn.execute("COMMIT").await.map(|_| ()),
        Err(e) => {
            if let Err(rollback) = conn.execute("ROLLBACK").await {
                tracing::warn!(error = %rollback, "rolling back the history table's creation failed");
            }
            Err(e)
        }
    }
}

pub(crate) async fn begin(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    conn.execute("BEGIN IMMEDIATE").await.map(|_| ())
}

pub(crate) async fn objects(
    conn: &mut SqliteConnection,
) -> Result<Vec<(ObjectKind, String)>, sqlx::Error> {
    let rows = conn.fetch_all(sqlx::query(
        "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%'",
    ))
    .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("type")?;
            let kind = if kind == "table" {
                ObjectKind::Table
            } else {
                ObjectKind::Index
            };
            Ok((kind, row.try_get("name")?))
        })
        .collect()
}
