//! `keel db copy --from URL --to URL`: copies every row of Keel's tables from one database to
//! another, on the same engine or across engines (`sqlite://PATH` ↔ `postgres://…`), for example
//! to move a single-machine SQLite deployment onto Postgres for several processes.
//!
//! # What it does
//! 1. Both URLs must name an engine. The source must have every migration of this build applied
//!    unchanged (otherwise: run `keel migrate up` against it first).
//! 2. The target is migrated up through the [`Migrator`] (the same lock as `keel migrate up`) and
//!    must then hold no row in any copied table: the copy never merges and never overwrites
//!    (there is no `--force`).
//! 3. Tables: every table this build's migrations create except the migration history
//!    (`keel_migrations`, which each side keeps for itself), in a fixed order: `users` first,
//!    then the others alphabetically (the schema has no foreign keys, so any order is valid).
//!    Columns: those the source and target tables share, read from each side at run time
//!    (`PRAGMA table_info`; `information_schema.columns` of `current_schema()`).
//!
//! # Consistency
//! - The source is read inside one read transaction: SQLite a deferred `BEGIN` on one
//!   connection (WAL keeps the snapshot of its first read), Postgres
//!   `REPEATABLE READ READ ONLY`. The copy is one snapshot even while Keel keeps running on the
//!   source; writes made after that snapshot are not copied.
//! - The target is written in ONE transaction (SQLite `BEGIN IMMEDIATE`; Postgres with the copied
//!   tables locked `IN EXCLUSIVE MODE`, so readers go on and writers wait). It commits only after
//!   every table's row count in the target equals the source's; any error rolls it back, leaving
//!   the target migrated but empty.
//! - Rows are read in primary-key order, [`BATCH`] at a time (keyset pagination), and each batch
//!   is written with multi-row INSERTs within the engine's bind-parameter limit (Postgres 65,535,
//!   SQLite 32,766). A table whose primary key is not copied is read in one query.
//!
//! # Conversion
//! Every cell becomes a [`Value`] as the source stores it and is converted by the target
//! column's type: SQLite INTEGER milliseconds ↔ `timestamptz`, INTEGER 0/1 ↔ `boolean`, TEXT
//! JSON ↔ `jsonb`/`json`, TEXT ↔ `uuid`, BLOB ↔ `bytea`, integers of any width (range-checked).
//! Postgres times keep millisecond precision in SQLite. A declared type outside these fails
//! before anything is written, naming `table.column`; so does a value that does not convert.
//!
//! # Sequences
//! Ids are copied as they are. On Postgres every identity or `nextval(…)` column is then moved
//! past the largest copied value (`setval(pg_get_serial_sequence(…), max)`), so new jobs get
//! larger ids. SQLite's AUTOINCREMENT follows the largest rowid inserted by itself.
//!
//! No message names a URL (they may hold passwords): the engines are named instead, and
//! database errors have both URLs and their passwords masked.

mod codec;
mod conn;
mod error;
mod redact;
mod schema;
mod value;

use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde::Serialize;

use crate::store::migrate::{Migration, Migrator};
use crate::store::Engine;
use conn::Conn;
pub use conn::BATCH;
pub use error::{CopyError, Side};
use redact::Redact;
use schema::TablePlan;
pub use value::Value;

/// Rows copied into one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub table: String,
    pub rows: u64,
}

/// What a finished copy did.
#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    pub from: Engine,
    pub to: Engine,
    /// In copy order.
    pub tables: Vec<TableReport>,
    pub rows: u64,
    pub elapsed: Duration,
}

/// `sqlite` or `postgres`.
pub fn engine_name(engine: Engine) -> &'static str {
    match engine {
        Engine::Sqlite => "sqlite",
        Engine::Postgres => "postgres",
    }
}

/// Copies every row of Keel's tables from `from` to `to` (see the module documentation).
/// `timeout` bounds connecting, waiting for the target's migration lock and for its table locks;
/// the copy itself is not bounded.
pub async fn copy(from: &str, to: &str, timeout: Duration) -> Result<CopyReport, CopyError> {
    let started = Instant::now();
    let from_engine = engine_of(from, Side::Source)?;
    let to_engine = engine_of(to, Side::Target)?;
    let redact = Redact::new(&[from, to]);
    let known = Migrator::new(&SecretString::from(from.to_string()), timeout)
        .map_err(|e| CopyError::Url {
            side: Side::Source,
            reason: e.to_string(),
        })?
        .migrations();
    let tables = schema::tables(known);

    if from_engine == Engine::Sqlite && !sqlite_file_exists(from) {
        return Err(CopyError::Connect {
            side: Side::Source,
            engine: engine_name(from_engine),
            message: "the database file does not exist".into(),
        });
    }
    let mut source = Conn::open(from, from_engine, timeout, false)
        .await
        .map_err(|e| CopyError::Connect {
            side: Side::Source,
            engine: engine_name(from_engine),
            message: redact.error(&e),
        })?;
    let result = async {
        source
            .begin_read()
            .await
            .map_err(|e| redact.db(Side::Source, "starting the read transaction", &e))?;
        check_source(&mut source, known, &redact).await?;
        Migrator::new(&SecretString::from(to.to_string()), timeout)
            .map_err(|e| CopyError::Url {
                side: Side::Target,
                reason: e.to_string(),
            })?
            .up(false)
            .await
            .map_err(|e| CopyError::TargetMigration {
                message: redact.text(e.to_string()),
            })?;
        let mut target = Conn::open(to, to_engine, timeout, true)
            .await
            .map_err(|e| CopyError::Connect {
                side: Side::Target,
                engine: engine_name(to_engine),
                message: redact.error(&e),
            })?;
        let copied = write(&mut source, &mut target, &tables, timeout, &redact).await;
        target.close(copied.is_err()).await;
        copied
    }
    .await;
    source.close(true).await;
    let tables = result?;
    Ok(CopyReport {
        from: from_engine,
        to: to_engine,
        rows: tables.iter().map(|t| t.rows).sum(),
        tables,
        elapsed: started.elapsed(),
    })
}

fn engine_of(url: &str, side: Side) -> Result<Engine, CopyError> {
    crate::store::check_url(url).map_err(|reason| CopyError::Url { side, reason })?;
    Ok(if url.starts_with("sqlite:") {
        Engine::Sqlite
    } else {
        Engine::Postgres
    })
}

/// Whether the file a `sqlite:` URL names exists (in-memory databases count as existing).
fn sqlite_file_exists(url: &str) -> bool {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split('?').next().unwrap_or(rest);
    path.is_empty() || path.starts_with(":memory:") || std::path::Path::new(path).exists()
}

/// Inside the source snapshot: every migration of this build applied, unchanged, none unknown.
async fn check_source(
    source: &mut Conn,
    known: &[Migration],
    redact: &Redact,
) -> Result<(), CopyError> {
    let step = "reading the migration history";
    let applied = match source.table_exists(schema::HISTORY).await {
        Ok(true) => source.applied().await,
        Ok(false) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
    .map_err(|e| redact.db(Side::Source, step, &e))?;
    for (version, checksum) in &applied {
        match known.iter().find(|m| m.version == *version) {
            None => {
                return Err(CopyError::SourceSchema {
                    detail: format!(
                        "has migration {version}, which this build does not know; run a newer keel"
                    ),
                })
            }
            Some(m) if m.checksum() != *checksum => {
                return Err(CopyError::SourceSchema {
                    detail: format!(
                        "has migration {version} ({}) changed after it was applied; see `keel migrate verify`",
                        m.name
                    ),
                })
            }
            Some(_) => {}
        }
    }
    let missing: Vec<String> = known
        .iter()
        .filter(|m| !applied.iter().any(|(v, _)| *v == m.version))
        .map(|m| format!("{:04}", m.version))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CopyError::SourceNotMigrated {
            detail: format!("migrations not applied: {}", missing.join(", ")),
        })
    }
}

/// The one target transaction: emptiness check, every table, the count check, sequences, commit.
async fn write(
    source: &mut Conn,
    target: &mut Conn,
    tables: &[String],
    timeout: Duration,
    redact: &Redact,
) -> Result<Vec<TableReport>, CopyError> {
    target
        .begin_write(tables, timeout)
        .await
        .map_err(|e| redact.db(Side::Target, "starting the write transaction", &e))?;
    for table in tables {
        let rows = target
            .count(table)
            .await
            .map_err(|e| redact.db(Side::Target, &format!("table {table}"), &e))?;
        if rows > 0 {
            return Err(CopyError::TargetNotEmpty {
                table: table.clone(),
                rows,
            });
        }
    }
    let mut done = Vec::with_capacity(tables.len());
    for table in tables {
        let plan = plan(source, target, table, redact).await?;
        let rows = copy_table(source, target, &plan, redact).await?;
        tracing::info!(table = %table, rows, "table copied");
        done.push((plan, rows));
    }
    for (plan, expected) in &done {
        let table = &plan.name;
        let step = format!("table {table}");
        let in_target = target
            .count(table)
            .await
            .map_err(|e| redact.db(Side::Target, &step, &e))?;
        if in_target != *expected {
            return Err(CopyError::CountMismatch {
                table: table.clone(),
                source_rows: *expected,
                target_rows: in_target,
            });
        }
        target
            .reset_sequences(plan)
            .await
            .map_err(|e| redact.db(Side::Target, &step, &e))?;
    }
    target
        .execute("COMMIT")
        .await
        .map_err(|e| redact.db(Side::Target, "committing", &e))?;
    Ok(done
        .into_iter()
        .map(|(plan, rows)| TableReport {
            table: plan.name,
            rows: u64::try_from(rows).unwrap_or_default(),
        })
        .collect())
}

/// Reads both sides' columns of `table` and matches them.
async fn plan(
    source: &mut Conn,
    target: &mut Conn,
    table: &str,
    redact: &Redact,
) -> Result<TablePlan, CopyError> {
    let step = format!("table {table}");
    let mut columns = Vec::with_capacity(2);
    for (side, conn) in [(Side::Source, &mut *source), (Side::Target, &mut *target)] {
        let list = conn
            .columns(table)
            .await
            .map_err(|e| redact.db(side, &step, &e))?;
        if list.is_empty() {
            return Err(CopyError::MissingTable {
                side,
                table: table.to_string(),
            });
        }
        columns.push(list);
    }
    let kind_of = |engine: Engine| match engine {
        Engine::Sqlite => value::Kind::of_sqlite,
        Engine::Postgres => value::Kind::of_postgres,
    };
    schema::plan(
        table,
        &columns[0],
        &columns[1],
        kind_of(source.engine()),
        kind_of(target.engine()),
    )
    .map_err(|(column, declared, side)| CopyError::UnknownType {
        side: if side == "source" {
            Side::Source
        } else {
            Side::Target
        },
        table: table.to_string(),
        column,
        declared,
    })
}

/// Copies one table in batches; returns the source's row count (in the snapshot).
async fn copy_table(
    source: &mut Conn,
    target: &mut Conn,
    plan: &TablePlan,
    redact: &Redact,
) -> Result<i64, CopyError> {
    let step = format!("table {}", plan.name);
    let expected = source
        .count(&plan.name)
        .await
        .map_err(|e| redact.db(Side::Source, &step, &e))?;
    let mut after: Option<Vec<Value>> = None;
    loop {
        let batch = source
            .read(plan, after.as_deref())
            .await
            .map_err(|e| redact.db(Side::Source, &step, &e))?;
        let n = batch.len();
        if let Some(last) = batch.last() {
            after = Some(plan.key.iter().map(|&i| last[i].clone()).collect());
        }
        let mut rows = Vec::with_capacity(n);
        for row in batch {
            let converted: Result<Vec<Value>, CopyError> = row
                .into_iter()
                .zip(&plan.columns)
                .map(|(v, col)| {
                    value::convert(v, col.target).map_err(|message| CopyError::Convert {
                        table: plan.name.clone(),
                        column: col.name.clone(),
                        message,
                    })
                })
                .collect();
            rows.push(converted?);
        }
        if !rows.is_empty() {
            target
                .insert(plan, rows)
                .await
                .map_err(|e| redact.db(Side::Target, &step, &e))?;
        }
        if plan.key.is_empty() || n < BATCH {
            return Ok(expected);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_can_be_spawned() {
        fn send<T: Send>(_: &T) {}
        let future = copy("sqlite://a.db", "sqlite://b.db", Duration::from_secs(1));
        send(&future);
    }

    #[test]
    fn tables_are_every_migrated_table_but_the_history_users_first() {
        let m = Migrator::new(
            &SecretString::from("sqlite://x.db".to_string()),
            Duration::from_secs(1),
        )
        .map(|m| m.migrations())
        .unwrap_or_default();
        let tables = schema::tables(m);
        assert_eq!(tables.first().map(String::as_str), Some("users"));
        assert!(tables.iter().any(|t| t == "jobs"));
        assert!(!tables.iter().any(|t| t == "keel_migrations"));
        let mut rest = tables[1..].to_vec();
        rest.sort();
        assert_eq!(rest, tables[1..]);
    }
}
