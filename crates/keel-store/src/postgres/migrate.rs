//! Migration primitives on one Postgres connection. An advisory lock, keyed by the schema, keeps
//! processes that start together from migrating at the same time: a session lock when connected
//! directly; behind a transaction-mode pooler, where a session does not stay on one server, the
//! whole run is one transaction holding a transaction-level lock, each migration under a
//! savepoint.

use sqlx::{Connection, Executor, PgConnection, Row};

use crate::migrations::ObjectKind;
use crate::PoolerMode;

const LOCK_KEY: &str = "hashtext('keel:migrate:' || current_schema())";

pub(crate) async fn open(url: &str, pooler: PoolerMode) -> Result<PgConnection, sqlx::Error> {
    let options = super::connect_options(url, pooler)
        .map_err(|e| sqlx::Error::Configuration(e.to_string().into()))?;
    let mut conn = PgConnection::connect_with(&options).await?;
    match pooler {
        PoolerMode::Direct => {
            conn.execute(&*format!("SELECT pg_advisory_lock({LOCK_KEY})"))
                .await?
        }
        PoolerMode::Transaction => {
            conn.execute(&*format!(
                "BEGIN; DEALLOCATE ALL; SELECT pg_advisory_xact_lock({LOCK_KEY})"
            ))
            .await?
        }
    };
    Ok(conn)
}

pub(crate) async fn close(mut conn: PgConnection, pooler: PoolerMode) -> Result<(), sqlx::Error> {
    match pooler {
        PoolerMode::Direct => {
            conn.execute(&*format!("SELECT pg_advisory_unlock({LOCK_KEY})"))
                .await?
        }
        PoolerMode::Transaction => conn.execute("COMMIT").await?,
    };
    conn.close().await
}

pub(crate) async fn begin(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    conn.execute("BEGIN").await.map(|_| ())
}

/// A step of one migration's transaction.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step {
    Begin,
    Commit,
    Rollback,
}

impl Step {
    /// The statement on a direct connection.
    pub(crate) fn direct(self) -> &'static str {
        match self {
            Step::Begin => "BEGIN",
            Step::Commit => "COMMIT",
            Step::Rollback => "ROLLBACK",
        }
    }

    /// The statement behind `pooler`: a savepoint inside the run's one transaction.
    pub(crate) fn statement(self, pooler: PoolerMode) -> &'static str {
        match (pooler, self) {
            (PoolerMode::Direct, step) => step.direct(),
            (PoolerMode::Transaction, Step::Begin) => "SAVEPOINT keel_migration",
            (PoolerMode::Transaction, Step::Commit) => "RELEASE SAVEPOINT keel_migration",
            (PoolerMode::Transaction, Step::Rollback) => "ROLLBACK TO SAVEPOINT keel_migration",
        }
    }
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
