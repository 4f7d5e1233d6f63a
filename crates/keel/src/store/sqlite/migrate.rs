//! Migration primitives on one SQLite connection. `BEGIN IMMEDIATE` takes the write lock, so two
//! processes migrating at once apply each migration once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{Connection, Row, SqliteConnection};

use crate::store::migrate::AppliedRow;
use crate::store::migrations::{Migration, ObjectKind};

pub(crate) async fn open(url: &str, wait: Duration) -> Result<SqliteConnection, sqlx::Error> {
    let options = super::options(url)
        .map_err(|e| sqlx::Error::Configuration(e.to_string().into()))?
        .busy_timeout(wait);
    SqliteConnection::connect_with(&options).await
}

pub(crate) async fn ensure_table(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS keel_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            checksum TEXT NOT NULL,
            applied_at INTEGER NOT NULL
        )",
    )
    .execute(conn)
    .await
    .map(|_| ())
}

pub(crate) async fn begin(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(conn)
        .await
        .map(|_| ())
}

pub(crate) async fn commit(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql("COMMIT").execute(conn).await.map(|_| ())
}

pub(crate) async fn rollback(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql("ROLLBACK").execute(conn).await.map(|_| ())
}

pub(crate) async fn applied(conn: &mut SqliteConnection) -> Result<Vec<AppliedRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT version, name, checksum, applied_at FROM keel_migrations ORDER BY version",
    )
    .fetch_all(conn)
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
    sqlx::raw_sql(m.up).execute(&mut *conn).await?;
    sqlx::query(
        "INSERT INTO keel_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
    )
    .bind(m.version)
    .bind(m.name)
    .bind(m.checksum())
    .bind(Utc::now().timestamp_millis())
    .execute(conn)
    .await
    .map(|_| ())
}

pub(crate) async fn revert(conn: &mut SqliteConnection, m: &Migration) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(m.down).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM keel_migrations WHERE version = ?")
        .bind(m.version)
        .execute(conn)
        .await
        .map(|_| ())
}

pub(crate) async fn objects(
    conn: &mut SqliteConnection,
) -> Result<Vec<(ObjectKind, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(conn)
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
