//! Migration primitives on one Postgres connection. A session advisory lock, keyed by the schema,
//! keeps processes that start together from migrating at the same time.

use sqlx::{Connection, Executor, PgConnection, Row};

use crate::migrate::AppliedRow;
use crate::migrations::{Migration, ObjectKind};

const LOCK_KEY: &str = "hashtext('keel:migrate:' || current_schema())";

pub(crate) async fn open(url: &str) -> Result<PgConnection, sqlx::Error> {
    let mut conn = PgConnection::connect(url).await?;
    sqlx::query(&format!("SELECT pg_advisory_lock({LOCK_KEY})"))
        .execute(&mut conn)
        .await?;
    Ok(conn)
}

pub(crate) async fn close(mut conn: PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("SELECT pg_advisory_unlock({LOCK_KEY})"))
        .execute(&mut conn)
        .await?;
    conn.close().await
}

pub(crate) async fn ensure_table(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS keel_migrations (
            version BIGINT PRIMARY KEY,
            name TEXT NOT NULL,
            checksum TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await
    .map(|_| ())
}

pub(crate) async fn begin(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    conn.execute("BEGIN").await.map(|_| ())
}

pub(crate) async fn commit(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    conn.execute("COMMIT").await.map(|_| ())
}

pub(crate) async fn rollback(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    conn.execute("ROLLBACK").await.map(|_| ())
}

pub(crate) async fn applied(conn: &mut PgConnection) -> Result<Vec<AppliedRow>, sqlx::Error> {
    let rows = conn
        .fetch_all(sqlx::query(
            "SELECT version, name, checksum, applied_at FROM keel_migrations ORDER BY version",
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok(AppliedRow {
                version: row.try_get("version")?,
                name: row.try_get("name")?,
                checksum: row.try_get("checksum")?,
                applied_at: row.try_get("applied_at")?,
            })
        })
        .collect()
}

pub(crate) async fn apply(conn: &mut PgConnection, m: &Migration) -> Result<(), sqlx::Error> {
    conn.execute(m.up).await?;
    conn.execute(
        sqlx::query("INSERT INTO keel_migrations (version, name, checksum) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(m.checksum()),
    )
    .await
    .map(|_| ())
}

pub(crate) async fn revert(conn: &mut PgConnection, m: &Migration) -> Result<(), sqlx::Error> {
    conn.execute(m.down).await?;
    conn.execute(sqlx::query("DELETE FROM keel_migrations WHERE version = $1").bind(m.version))
        .await
        .map(|_| ())
}

pub(crate) async fn objects(
    conn: &mut PgConnection,
) -> Result<Vec<(ObjectKind, String)>, sqlx::Error> {
    let rows = conn.fetch_all(sqlx::query(
        "SELECT 'table' AS kind, tablename AS name FROM pg_tables WHERE schemaname = current_schema()
         UNION ALL
         SELECT 'index', indexname FROM pg_indexes WHERE schemaname = current_schema()",
    ))
    .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("kind")?;
            let kind = if kind == "table" {
                ObjectKind::Table
            } else {
                ObjectKind::Index
            };
            Ok((kind, row.try_get("name")?))
        })
        .collect()
}
