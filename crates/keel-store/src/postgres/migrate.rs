//! Migration primitives on one Postgres connection. A session advisory lock, keyed by the schema,
//! keeps processes that start together from migrating at the same time.

use sqlx::{Connection, Executor, PgConnection, Row};

use crate::migrations::ObjectKind;

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

pub(crate) async fn ensure_table(
    conn: &mut PgConnection,
    history: &str,
) -> Result<(), sqlx::Error> {
    conn.execute(
        format!(
            "CREATE TABLE IF NOT EXISTS {history} (
            version BIGINT PRIMARY KEY,
            name TEXT NOT NULL,
            checksum TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )"
        )
        .as_str(),
    )
    .await
    .map(|_| ())
}

pub(crate) async fn begin(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    conn.execute("BEGIN").await.map(|_| ())
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
