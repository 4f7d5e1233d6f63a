//! Migration primitives on one SQLite connection. `BEGIN IMMEDIATE` takes the write lock, so two
//! processes migrating at once apply each migration once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{Connection, Executor, Row, SqliteConnection};

use crate::migrate::AppliedRow;
use crate::migrations::{Migration, ObjectKind};

pub(crate) async fn open(url: &str, wait: Duration) -> Result<SqliteConnection, sqlx::Error> {
    let options = super::options(url)
        .map_err(|e| sqlx::Error::Configuration(e.to_string().into()))?
        .busy_timeout(wait);
    SqliteConnection::connect_with(&options).await
}

pub(crate) async fn ensure_table(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS keel_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            checksum TEXT NOT NULL,
            applied_at INTEGER NOT NULL
        )",
    )
    .await
    .map(|_| ())
}

pub(crate) async fn begin(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    conn.execute("BEGIN IMMEDIATE").await.map(|_| ())
}

pub(crate) async fn commit(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    conn.execute("COMMIT").await.map(|_| ())
}

pub(crate) async fn rollback(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    conn.execute("ROLLBACK").await.map(|_| ())
}

pub(crate) async fn applied(conn: &mut SqliteConnection) -> Result<Vec<AppliedRow>, sqlx::Error> {
    let rows = conn
        .fetch_all(sqlx::query(
            "SELECT version, name, checksum, applied_at FROM keel_migrations ORDER BY version",
        ))
        .await?;
    rows.iter()
        .map(|row| {
            let ms: i64 = row.try_get("applied_at")?;
            Ok(AppliedRow {
                version: row.try_get("version")?,
                name: row.try_get("name")?,
                checksum: row.try_get("checksum")?,
                applied_at: DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default(),
            })
        })
        .collect()
}

pub(crate) async fn apply(conn: &mut SqliteConnection, m: &Migration) -> Result<(), sqlx::Error> {
    conn.execute(m.up).await?;
    conn.execute(
        sqlx::query(
            "INSERT INTO keel_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(m.checksum())
        .bind(Utc::now().timestamp_millis()),
    )
    .await
    .map(|_| ())
}

pub(crate) async fn revert(conn: &mut SqliteConnection, m: &Migration) -> Result<(), sqlx::Error> {
    conn.execute(m.down).await?;
    conn.execute(sqlx::query("DELETE FROM keel_migrations WHERE version = ?").bind(m.version))
        .await
        .map(|_| ())
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
