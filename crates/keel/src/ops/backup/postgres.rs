//! Postgres: `pg_dump` of the current schema at an exported snapshot, in which the manifest's rows
//! are counted; `pg_restore` in one transaction, so a failed restore leaves the target as it was.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use super::files::{self, blocking};
use super::pgtools::{self, Params};
use super::toc::Toc;
use super::{report, BackupError, Counts, Manifest, Redact, RestoreOptions, RestoreReport};
use crate::store::Engine;

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

async fn connect(
    url: &str,
    timeout: Duration,
    redact: &Redact,
) -> Result<PgConnection, BackupError> {
    let options = PgConnectOptions::from_str(url).map_err(|e| {
        BackupError::Url(format!(
            "DATABASE_URL is not a valid Postgres URL: {}",
            crate::store::redact(&redact.text(&e.to_string()))
        ))
    })?;
    match tokio::time::timeout(timeout, PgConnection::connect_with(&options)).await {
        Ok(result) => result.map_err(|e| redact.db(e)),
        Err(_) => Err(BackupError::Database(format!(
            "the database did not answer within {timeout:?}"
        ))),
    }
}

/// Every table of `schema` with its row count, and the applied migrations, on `conn` (in its
/// transaction, if one is open).
async fn count_schema(conn: &mut PgConnection, schema: &str) -> Result<Counts, sqlx::Error> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY tablename",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await?;
    let mut counts = Counts::default();
    for name in names {
        let sql = format!("SELECT count(*) FROM {}.{}", quote(schema), quote(&name));
        let n: i64 = sqlx::query_scalar(&sql).fetch_one(&mut *conn).await?;
        counts.tables.insert(name, n);
    }
    if counts.tables.contains_key("keel_migrations") {
        let sql = format!(
            "SELECT version FROM {}.keel_migrations ORDER BY version",
            quote(schema)
        );
        counts.migrations = sqlx::query_scalar(&sql).fetch_all(&mut *conn).await?;
    }
    Ok(counts)
}

async fn count_at(
    url: &str,
    schema: &str,
    timeout: Duration,
    redact: &Redact,
) -> Result<Counts, BackupError> {
    let mut conn = connect(url, timeout, redact).await?;
    let counts = count_schema(&mut conn, schema).await;
    let _ = conn.close().await;
    counts.map_err(|e| redact.db(e))
}

async fn schema_exists(conn: &mut PgConnection, schema: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(schema)
        .fetch_one(&mut *conn)
        .await
}

pub(super) async fn backup(
    url: &str,
    file: &Path,
    timeout: Duration,
) -> Result<Manifest, BackupError> {
    let tool = pgtools::find("pg_dump")?;
    let params = Params::from_url(url)?;
    let redact = Redact::new(url);
    let mut conn = connect(url, timeout, &redact).await?;
    let result = dump(&mut conn, &tool, &params, file, &redact).await;
    // Closing ends the read-only transaction that held the snapshot.
    let _ = conn.close().await;
    result
}

async fn dump(
    conn: &mut PgConnection,
    tool: &Path,
    params: &Params,
    file: &Path,
    redact: &Redact,
) -> Result<Manifest, BackupError> {
    let db = |e| redact.db(e);
    sqlx::raw_sql("SET idle_in_transaction_session_timeout = 0; SET statement_timeout = 0")
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    let (schema, created_at): (Option<String>, DateTime<Utc>) =
        sqlx::query_as("SELECT current_schema()::text, now()")
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
    let schema = schema.ok_or_else(|| {
        BackupError::Url(
            "no schema named in the search_path of DATABASE_URL exists; nothing to back up".into(),
        )
    })?;
    let counts = count_schema(conn, &schema).await.map_err(db)?;

    let tmp = files::temp_beside(file, "partial");
    let mut command = params.command(tool);
    command
        .arg("--format=custom")
        .arg("--no-owner")
        .arg("--no-privileges")
        .arg(format!("--schema={}", quote(&schema)))
        .arg(format!("--snapshot={snapshot}"))
        .arg("--file")
        .arg(&tmp);
    let dumped = pgtools::run(command, "pg_dump", redact).await;
    let published = match dumped {
        Ok(_) => {
            let (from, to) = (tmp.clone(), file.to_path_buf());
            blocking(move || {
                files::sync_file(&from)?;
                files::publish(&from, &to)
            })
            .await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = published {
        files::remove_quietly(&tmp);
        return Err(e);
    }
    sqlx::raw_sql("COMMIT")
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(Manifest {
        engine: Engine::Postgres,
        created_at,
        migrations: counts.migrations,
        tables: counts.tables,
    })
}

async fn list(
    tool: &Path,
    params: &Params,
    file: &Path,
    redact: &Redact,
) -> Result<Toc, BackupError> {
    let mut command = params.command(tool);
    command.arg("--list").arg(file);
    let text = match pgtools::run(command, "pg_restore", redact).await {
        Ok(text) => text,
        Err(BackupError::Tool { message, .. }) => return Err(BackupError::Damaged(message)),
        Err(e) => return Err(e),
    };
    Toc::parse(&text)
        .ok_or_else(|| BackupError::Damaged("the archive holds no schema and no table".into()))
}

/// `pg_restore` in one transaction. Into a schema that exists already, the schema entry is left
/// out and every object in the archive is dropped first if present (`--clean --if-exists`).
async fn pg_restore(
    tool: &Path,
    params: &Params,
    file: &Path,
    toc: &Toc,
    schema_exists: bool,
    redact: &Redact,
) -> Result<(), BackupError> {
    let mut command = params.command(tool);
    command
        .arg("--no-owner")
        .arg("--no-privileges")
        .arg("--exit-on-error")
        .arg("--single-transaction");
    let mut list_file: Option<PathBuf> = None;
    if schema_exists {
        let path = std::env::temp_dir().join(format!(
            "keel-restore-{}.list",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&path, toc.without_schema())
            .map_err(|e| BackupError::io(format!("cannot write {}", path.display()), e))?;
        command
            .arg("--clean")
            .arg("--if-exists")
            .arg(format!("--use-list={}", path.display()));
        list_file = Some(path);
    }
    command
        .arg(format!("--dbname={}", params.database))
        .arg(file);
    let result = pgtools::run(command, "pg_restore", redact).await;
    if let Some(path) = list_file {
        files::remove_quietly(&path);
    }
    result.map(|_| ())
}

/// The schema the search path of `conn`'s URL will resolve to once `schema` exists: its first
/// entry that exists now or is `schema`.
async fn resolve_schema(
    conn: &mut PgConnection,
    schema: &str,
) -> Result<Option<String>, sqlx::Error> {
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut *conn)
        .await?;
    let path: String = sqlx::query_scalar("SELECT current_setting('search_path')")
        .fetch_one(&mut *conn)
        .await?;
    for entry in path.split(',') {
        let entry = entry.trim();
        let name = match entry.strip_prefix('"').and_then(|e| e.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\"\"", "\""),
            None => entry.to_string(),
        };
        let name = if name == "$user" { user.clone() } else { name };
        if name.is_empty() || name.starts_with("pg_") {
            continue;
        }
        if name == schema || schema_exists(conn, &name).await? {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

pub(super) async fn restore(
    url: &str,
    file: &Path,
    manifest: Option<Manifest>,
    options: RestoreOptions,
) -> Result<RestoreReport, BackupError> {
    let tool = pgtools::find("pg_restore")?;
    let params = Params::from_url(url)?;
    let redact = Redact::new(url);
    let toc = list(&tool, &params, file, &redact).await?;
    if options.verify {
        return verify(url, file, manifest, options, &tool, &params, &toc, &redact).await;
    }
    let schema = toc.schema.clone();
    let mut conn = connect(url, options.timeout, &redact).await?;
    let checked = async {
        let target = resolve_schema(&mut conn, &schema)
            .await
            .map_err(|e| redact.db(e))?;
        if target.as_deref() != Some(schema.as_str()) {
            return Err(BackupError::SchemaMismatch {
                backup: schema.clone(),
                target: target.unwrap_or_else(|| "no existing schema".into()),
            });
        }
        let exists = schema_exists(&mut conn, &schema)
            .await
            .map_err(|e| redact.db(e))?;
        if exists && !options.force {
            let counts = count_schema(&mut conn, &schema)
                .await
                .map_err(|e| redact.db(e))?;
            if let Some(listed) = counts.non_empty() {
                return Err(BackupError::NotEmpty(listed));
            }
        }
        Ok(exists)
    }
    .await;
    let _ = conn.close().await;
    let exists = checked?;
    pg_restore(&tool, &params, file, &toc, exists, &redact).await?;
    let counts = count_at(url, &schema, options.timeout, &redact).await?;
    report(
        Engine::Postgres,
        url,
        manifest,
        counts,
        None,
        options.timeout,
    )
    .await
}

/// Restores into a scratch database created through the target's server, checks it, and drops
/// it again whatever happened.
#[allow(clippy::too_many_arguments)]
async fn verify(
    url: &str,
    file: &Path,
    manifest: Option<Manifest>,
    options: RestoreOptions,
    tool: &Path,
    params: &Params,
    toc: &Toc,
    redact: &Redact,
) -> Result<RestoreReport, BackupError> {
    let name = format!("keel_verify_{}", uuid::Uuid::new_v4().simple());
    let mut admin = connect(url, options.timeout, redact).await?;
    let created = sqlx::raw_sql(&format!("CREATE DATABASE {}", quote(&name)))
        .execute(&mut admin)
        .await;
    if let Err(e) = created {
        let _ = admin.close().await;
        let refused = e
            .as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|code| code == "42501");
        return Err(if refused {
            BackupError::ScratchRefused(redact.text(&e.to_string()))
        } else {
            redact.db(e)
        });
    }
    let result = async {
        let scratch_url = pgtools::url_with(url, &name, &toc.schema)?;
        let mut conn = connect(&scratch_url, options.timeout, redact).await?;
        let exists = schema_exists(&mut conn, &toc.schema).await;
        let _ = conn.close().await;
        let exists = exists.map_err(|e| redact.db(e))?;
        pg_restore(
            tool,
            &params.with_database(&name),
            file,
            toc,
            exists,
            redact,
        )
        .await?;
        let counts = count_at(&scratch_url, &toc.schema, options.timeout, redact).await?;
        report(
            Engine::Postgres,
            &scratch_url,
            manifest,
            counts,
            Some(name.clone()),
            options.timeout,
        )
        .await
    }
    .await;
    let dropped = drop_database(&mut admin, &name).await;
    let _ = admin.close().await;
    match (result, dropped) {
        (Ok(report), Ok(())) => Ok(report),
        (Ok(_), Err(e)) => Err(BackupError::Database(format!(
            "cannot drop the scratch database {name}: {}",
            redact.text(&e.to_string())
        ))),
        (Err(e), dropped) => {
            if let Err(d) = dropped {
                tracing::warn!(database = %name, error = %redact.text(&d.to_string()), "cannot drop the scratch database");
            }
            Err(e)
        }
    }
}

async fn drop_database(admin: &mut PgConnection, name: &str) -> Result<(), sqlx::Error> {
    let forced = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(name));
    match sqlx::raw_sql(&forced).execute(&mut *admin).await {
        Ok(_) => Ok(()),
        // Servers before 13 have no FORCE; every connection of ours is closed by now.
        Err(_) => sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {}", quote(name)))
            .execute(&mut *admin)
            .await
            .map(|_| ()),
    }
}
