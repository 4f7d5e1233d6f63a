//! SQLite: `VACUUM INTO` for the snapshot; a restore copies the file into place through a
//! temporary file in the same directory and an atomic rename.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, Row, SqliteConnection};

use super::files::{self, blocking};
use super::{report, BackupError, Counts, Manifest, Redact, RestoreOptions, RestoreReport};
use crate::store::Engine;

/// The database file a `sqlite:` URL names; in-memory databases have none.
fn path_of(url: &str) -> Result<PathBuf, BackupError> {
    let options = SqliteConnectOptions::from_str(url).map_err(|e| {
        BackupError::Url(format!(
            "DATABASE_URL is not a valid SQLite URL: {}",
            Redact::new(url).text(&e.to_string())
        ))
    })?;
    let path = options.get_filename();
    let text = path.to_string_lossy();
    if text.is_empty() || text.contains(":memory:") || url.contains("mode=memory") {
        return Err(BackupError::Url(
            "DATABASE_URL names an in-memory SQLite database, which has no file to back up or restore"
                .into(),
        ));
    }
    files::absolute(path)
}

/// A connection to the file at `path` that never creates it and leaves its journal mode alone.
async fn open(path: &Path, timeout: Duration) -> Result<SqliteConnection, BackupError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .busy_timeout(timeout);
    SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| BackupError::Database(format!("{}: {e}", path.display())))
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Every table's row count and the applied migrations, on `conn`.
async fn count(conn: &mut SqliteConnection) -> Result<Counts, sqlx::Error> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut counts = Counts::default();
    for name in names {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}", quote(&name)))
            .fetch_one(&mut *conn)
            .await?;
        counts.tables.insert(name, n);
    }
    if counts.tables.contains_key("keel_migrations") {
        counts.migrations =
            sqlx::query_scalar("SELECT version FROM keel_migrations ORDER BY version")
                .fetch_all(&mut *conn)
                .await?;
    }
    Ok(counts)
}

async fn count_file(path: &Path, timeout: Duration) -> Result<Counts, BackupError> {
    let mut conn = open(path, timeout).await?;
    let counts = count(&mut conn).await;
    let _ = conn.close().await;
    counts.map_err(|e| BackupError::Database(format!("{}: {e}", path.display())))
}

pub(super) async fn backup(
    url: &str,
    file: &Path,
    timeout: Duration,
) -> Result<Manifest, BackupError> {
    let source = path_of(url)?;
    if !source.is_file() {
        return Err(BackupError::NotFound(source));
    }
    let tmp = files::temp_beside(file, "partial");
    let Some(into) = tmp.to_str().map(str::to_string) else {
        return Err(BackupError::Url(format!(
            "{} is not a UTF-8 path, which VACUUM INTO needs",
            file.display()
        )));
    };
    let result = async {
        let redact = Redact::new(url);
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| BackupError::Url(redact.text(&e.to_string())))?
            .create_if_missing(false)
            .busy_timeout(timeout);
        let mut conn = SqliteConnection::connect_with(&options)
            .await
            .map_err(|e| redact.db(e))?;
        let created_at = Utc::now();
        // One read transaction: the copy is the database as of its start. The path is a bound
        // parameter, so no quoting can go wrong.
        let vacuumed = sqlx::query("VACUUM INTO ?")
            .bind(&into)
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
        vacuumed.map_err(|e| redact.db(e))?;
        let counts = count_file(&tmp, timeout).await?;
        let (tmp, file) = (tmp.clone(), file.to_path_buf());
        blocking(move || {
            files::sync_file(&tmp)?;
            files::publish(&tmp, &file)
        })
        .await?;
        Ok(Manifest {
            engine: Engine::Sqlite,
            created_at,
            migrations: counts.migrations,
            tables: counts.tables,
        })
    }
    .await;
    if result.is_err() {
        files::remove_quietly(&tmp);
        files::remove_quietly(&files::with_suffix(&tmp, "-journal"));
    }
    result
}

pub(super) async fn restore(
    url: &str,
    file: &Path,
    manifest: Option<Manifest>,
    options: RestoreOptions,
) -> Result<RestoreReport, BackupError> {
    if options.verify {
        let dir =
            std::env::temp_dir().join(format!("keel-verify-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir)
            .map_err(|e| BackupError::io(format!("cannot create {}", dir.display()), e))?;
        let path = dir.join("keel.db");
        let result = async {
            install(file, &path, options.timeout).await?;
            let counts = count_file(&path, options.timeout).await?;
            let scratch_url = format!("sqlite://{}", path.display());
            let scratch = Some(path.display().to_string());
            report(
                Engine::Sqlite,
                &scratch_url,
                manifest,
                counts,
                scratch,
                options.timeout,
            )
            .await
        }
        .await;
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the scratch database");
        }
        return result;
    }
    let target = path_of(url)?;
    if !options.force {
        ensure_empty(&target)?;
    }
    install(file, &target, options.timeout).await?;
    let counts = count_file(&target, options.timeout).await?;
    report(Engine::Sqlite, url, manifest, counts, None, options.timeout).await
}

/// The target is empty when no file is there, or an empty one (with no write-ahead log).
fn ensure_empty(target: &Path) -> Result<(), BackupError> {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let (main, wal) = (size(target), size(&files::with_suffix(target, "-wal")));
    if files::exists(target) && !target.is_file() {
        return Err(BackupError::NotEmpty(format!(
            "{} is not a file",
            target.display()
        )));
    }
    if main > 0 || wal > 0 {
        return Err(BackupError::NotEmpty(format!(
            "{} holds {} bytes",
            target.display(),
            main + wal
        )));
    }
    Ok(())
}

/// Copies the backup to a temporary file beside `dest`, checks it, and renames it into place
/// (after removing `dest`'s stale write-ahead log and shared memory, which belong to the old
/// database).
async fn install(file: &Path, dest: &Path, timeout: Duration) -> Result<(), BackupError> {
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| BackupError::io(format!("cannot create {}", dir.display()), e))?;
    }
    let tmp = files::temp_beside(dest, "restore");
    let cleanup = |tmp: &Path| {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            files::remove_quietly(&files::with_suffix(tmp, suffix));
        }
    };
    let result = async {
        let (from, to) = (file.to_path_buf(), tmp.clone());
        blocking(move || {
            std::fs::copy(&from, &to).map_err(|e| {
                BackupError::io(format!("cannot copy {} into place", from.display()), e)
            })?;
            files::sync_file(&to)
        })
        .await?;
        check(&tmp, timeout).await?;
        // Nothing may read the copy with the old database's log: remove it before the rename.
        for suffix in ["-wal", "-shm", "-journal"] {
            let stale = files::with_suffix(dest, suffix);
            match std::fs::remove_file(&stale) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(BackupError::io(
                        format!("cannot remove {}", stale.display()),
                        e,
                    ))
                }
            }
        }
        std::fs::rename(&tmp, dest)
            .map_err(|e| BackupError::io(format!("cannot write {}", dest.display()), e))?;
        files::sync_dir(dest);
        Ok(())
    }
    .await;
    cleanup(&tmp);
    result
}

/// `PRAGMA quick_check` on the copy: a truncated or damaged backup is refused.
async fn check(path: &Path, timeout: Duration) -> Result<(), BackupError> {
    let mut conn = open(path, timeout)
        .await
        .map_err(|e| BackupError::Damaged(e.to_string()))?;
    let rows = sqlx::query("PRAGMA quick_check").fetch_all(&mut conn).await;
    let _ = conn.close().await;
    let rows = rows.map_err(|e| BackupError::Damaged(e.to_string()))?;
    let findings: Vec<String> = rows
        .iter()
        .filter_map(|row| row.try_get::<String, _>(0).ok())
        .filter(|text| text != "ok")
        .take(5)
        .collect();
    if findings.is_empty() && !rows.is_empty() {
        Ok(())
    } else {
        Err(BackupError::Damaged(format!(
            "SQLite's quick_check reports: {}",
            findings.join("; ")
        )))
    }
}
