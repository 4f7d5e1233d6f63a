//! One connection to either engine, with the few statements the copy needs: transactions,
//! introspection, counts, keyset reads and multi-row inserts.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection, SqliteConnection};

use super::codec::{bind_postgres, bind_sqlite, decode_postgres, decode_sqlite};
use super::schema::{quote, ColumnInfo, TablePlan};
use super::value::{Kind, Value};
use crate::store::Engine;

/// Rows read per batch.
pub const BATCH: usize = 1_000;
/// Bind parameters one statement may carry.
const PG_PARAMS: usize = 65_535;
const SQLITE_PARAMS: usize = 32_766;

pub enum Conn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Conn {
    /// Connects within `timeout`. `create`: a missing SQLite file is created (the target).
    pub async fn open(
        url: &str,
        engine: Engine,
        timeout: Duration,
        create: bool,
    ) -> Result<Conn, sqlx::Error> {
        let connecting = async {
            match engine {
                Engine::Sqlite => {
                    let options = crate::store::sqlite_options(url)
                        .map_err(|e| sqlx::Error::Configuration(e.to_string().into()))?
                        .create_if_missing(create)
                        .busy_timeout(timeout);
                    SqliteConnection::connect_with(&options)
                        .await
                        .map(Conn::Sqlite)
                }
                Engine::Postgres => {
                    let options = PgConnectOptions::from_str(url)?.application_name("keel-db-copy");
                    PgConnection::connect_with(&options)
                        .await
                        .map(Conn::Postgres)
                }
            }
        };
        tokio::time::timeout(timeout, connecting)
            .await
            .unwrap_or_else(|_| {
                Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {timeout:?}"),
                )))
            })
    }

    pub fn engine(&self) -> Engine {
        match self {
            Conn::Sqlite(_) => Engine::Sqlite,
            Conn::Postgres(_) => Engine::Postgres,
        }
    }

    pub async fn execute(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        match self {
            Conn::Sqlite(c) => c.execute(sql).await.map(|_| ()),
            Conn::Postgres(c) => c.execute(sql).await.map(|_| ()),
        }
    }

    /// Starts the snapshot the source is read in: one deferred read transaction (SQLite in WAL
    /// mode keeps the snapshot of its first read), or `REPEATABLE READ READ ONLY` (Postgres).
    pub async fn begin_read(&mut self) -> Result<(), sqlx::Error> {
        match self {
            Conn::Sqlite(_) => self.execute("BEGIN").await,
            Conn::Postgres(_) => {
                self.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await
            }
        }
    }

    /// Starts the one write transaction on the target: SQLite takes the write lock now; Postgres
    /// locks the copied tables against writers (readers go on) for the whole copy.
    pub async fn begin_write(
        &mut self,
        tables: &[String],
        timeout: Duration,
    ) -> Result<(), sqlx::Error> {
        match self {
            Conn::Sqlite(_) => self.execute("BEGIN IMMEDIATE").await,
            Conn::Postgres(_) => {
                self.execute("BEGIN").await?;
                self.execute(&format!("SET LOCAL lock_timeout = {}", timeout.as_millis()))
                    .await?;
                if tables.is_empty() {
                    return Ok(());
                }
                let list: Vec<String> = tables.iter().map(|t| quote(t)).collect();
                self.execute(&format!("LOCK TABLE {} IN EXCLUSIVE MODE", list.join(", ")))
                    .await
            }
        }
    }

    pub async fn table_exists(&mut self, table: &str) -> Result<bool, sqlx::Error> {
        match self {
            Conn::Sqlite(c) => sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
            )
            .bind(table)
            .fetch_one(c)
            .await
            .map(|n| n > 0),
            Conn::Postgres(c) => {
                sqlx::query_scalar::<_, bool>(
                    "SELECT EXISTS (SELECT 1 FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_name = $1)",
                )
                .bind(table)
                .fetch_one(c)
                .await
            }
        }
    }

    /// `(version, checksum)` of every applied migration.
    pub async fn applied(&mut self) -> Result<Vec<(i64, String)>, sqlx::Error> {
        let sql = "SELECT version, checksum FROM keel_migrations ORDER BY version";
        match self {
            Conn::Sqlite(c) => sqlx::query_as(sql).fetch_all(c).await,
            Conn::Postgres(c) => sqlx::query_as(sql).fetch_all(c).await,
        }
    }

    /// The columns of `table` in order; empty when there is no such table.
    pub async fn columns(&mut self, table: &str) -> Result<Vec<ColumnInfo>, sqlx::Error> {
        match self {
            Conn::Sqlite(c) => {
                let rows: Vec<(String, String, i64)> =
                    sqlx::query_as("SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid")
                        .bind(table)
                        .fetch_all(c)
                        .await?;
                Ok(rows
                    .into_iter()
                    .map(|(name, declared, pk)| ColumnInfo {
                        name,
                        declared,
                        pk: (pk > 0).then_some(pk),
                        sequence: false,
                    })
                    .collect())
            }
            Conn::Postgres(c) => {
                let rows: Vec<(String, String, bool, Option<i64>)> = sqlx::query_as(
                    "SELECT c.column_name::text, c.data_type::text,
                            c.is_identity::text = 'YES' OR coalesce(c.column_default::text, '') LIKE 'nextval(%',
                            (SELECT k.ordinal_position::bigint
                               FROM information_schema.table_constraints t
                               JOIN information_schema.key_column_usage k
                                 ON k.constraint_schema = t.constraint_schema
                                AND k.constraint_name = t.constraint_name
                              WHERE t.constraint_type = 'PRIMARY KEY'
                                AND t.table_schema = c.table_schema
                                AND t.table_name = c.table_name
                                AND k.column_name = c.column_name)
                       FROM information_schema.columns c
                      WHERE c.table_schema = current_schema() AND c.table_name = $1
                      ORDER BY c.ordinal_position",
                )
                .bind(table)
                .fetch_all(c)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(name, declared, sequence, pk)| ColumnInfo {
                        name,
                        declared,
                        pk,
                        sequence,
                    })
                    .collect())
            }
        }
    }

    pub async fn count(&mut self, table: &str) -> Result<i64, sqlx::Error> {
        let sql = format!("SELECT count(*) FROM {}", quote(table));
        match self {
            Conn::Sqlite(c) => sqlx::query_scalar(&sql).fetch_one(c).await,
            Conn::Postgres(c) => sqlx::query_scalar(&sql).fetch_one(c).await,
        }
    }

    /// The next batch of `plan`'s rows in key order, after the key `after` (the previous batch's
    /// last row), as the source represents them. A table without a copied key is read whole.
    pub async fn read(
        &mut self,
        plan: &TablePlan,
        after: Option<&[Value]>,
    ) -> Result<Vec<Vec<Value>>, sqlx::Error> {
        let engine = self.engine();
        let list: Vec<String> = plan.columns.iter().map(|c| quote(&c.name)).collect();
        let mut sql = format!("SELECT {} FROM {}", list.join(", "), quote(&plan.name));
        if !plan.key.is_empty() {
            let key: Vec<String> = plan.key.iter().map(|&i| list[i].clone()).collect();
            if after.is_some() {
                let marks: Vec<String> = (1..=key.len()).map(|n| mark(engine, n, None)).collect();
                sql.push_str(&format!(
                    " WHERE ({}) > ({})",
                    key.join(", "),
                    marks.join(", ")
                ));
            }
            sql.push_str(&format!(" ORDER BY {} LIMIT {BATCH}", key.join(", ")));
        }
        let key_kinds = plan.key.iter().map(|&i| plan.columns[i].source);
        let bound = after.unwrap_or_default().iter().cloned().zip(key_kinds);
        match self {
            Conn::Sqlite(c) => {
                let mut query = sqlx::query(&sql);
                for (value, _) in bound {
                    query = bind_sqlite(query, value);
                }
                let rows = query.fetch_all(c).await?;
                rows.iter()
                    .map(|row| (0..list.len()).map(|i| decode_sqlite(row, i)).collect())
                    .collect()
            }
            Conn::Postgres(c) => {
                let mut query = sqlx::query(&sql);
                for (value, kind) in bound {
                    query = bind_postgres(query, value, kind)?;
                }
                let rows = query.fetch_all(c).await?;
                rows.iter()
                    .map(|row| {
                        plan.columns
                            .iter()
                            .enumerate()
                            .map(|(i, col)| decode_postgres(row, i, col.source))
                            .collect()
                    })
                    .collect()
            }
        }
    }

    /// Inserts `rows` (already in the target's representation) with as few multi-row INSERTs as
    /// the engine's bind-parameter limit allows.
    pub async fn insert(
        &mut self,
        plan: &TablePlan,
        rows: Vec<Vec<Value>>,
    ) -> Result<(), sqlx::Error> {
        let engine = self.engine();
        let width = plan.columns.len().max(1);
        let limit = match engine {
            Engine::Sqlite => SQLITE_PARAMS,
            Engine::Postgres => PG_PARAMS,
        };
        let per_statement = (limit / width).clamp(1, BATCH);
        let list: Vec<String> = plan.columns.iter().map(|c| quote(&c.name)).collect();
        let overriding = if engine == Engine::Postgres && plan.identity {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        };
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<Vec<Value>> = rows.by_ref().take(per_statement).collect();
            let mut tuples = Vec::with_capacity(chunk.len());
            let mut n = 0;
            for _ in &chunk {
                let marks: Vec<String> = plan
                    .columns
                    .iter()
                    .map(|c| {
                        n += 1;
                        mark(engine, n, Some(c.target))
                    })
                    .collect();
                tuples.push(format!("({})", marks.join(", ")));
            }
            let sql = format!(
                "INSERT INTO {} ({}){overriding} VALUES {}",
                quote(&plan.name),
                list.join(", "),
                tuples.join(", ")
            );
            match self {
                Conn::Sqlite(c) => {
                    let mut query = sqlx::query(&sql);
                    for value in chunk.into_iter().flatten() {
                        query = bind_sqlite(query, value);
                    }
                    query.execute(&mut *c).await?;
                }
                Conn::Postgres(c) => {
                    let mut query = sqlx::query(&sql);
                    for row in chunk {
                        for (value, col) in row.into_iter().zip(&plan.columns) {
                            query = bind_postgres(query, value, col.target)?;
                        }
                    }
                    query.execute(&mut *c).await?;
                }
            }
        }
        Ok(())
    }

    /// Postgres: moves the sequence behind each of `plan`'s sequence columns past the largest
    /// copied value, so the next generated id follows it. SQLite's AUTOINCREMENT already follows
    /// the largest rowid inserted.
    pub async fn reset_sequences(&mut self, plan: &TablePlan) -> Result<(), sqlx::Error> {
        let Conn::Postgres(c) = self else {
            return Ok(());
        };
        for column in &plan.sequences {
            let col = quote(column);
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(max({col}), 1), max({col}) IS NOT NULL) FROM {}",
                quote(&plan.name)
            );
            sqlx::query(&sql)
                .bind(quote(&plan.name))
                .bind(column)
                .execute(&mut *c)
                .await?;
        }
        Ok(())
    }

    /// Closes the connection; an open transaction is rolled back first.
    pub async fn close(mut self, rollback: bool) {
        if rollback {
            let _ = self.execute("ROLLBACK").await;
        }
        let _ = match self {
            Conn::Sqlite(c) => c.close().await,
            Conn::Postgres(c) => c.close().await,
        };
    }
}

/// The `n`th placeholder; Postgres JSON columns cast it to their exact type.
fn mark(engine: Engine, n: usize, kind: Option<Kind>) -> String {
    match (engine, kind) {
        (Engine::Sqlite, _) => "?".into(),
        (Engine::Postgres, Some(Kind::Json(false))) => format!("${n}::json"),
        (Engine::Postgres, _) => format!("${n}"),
    }
}
