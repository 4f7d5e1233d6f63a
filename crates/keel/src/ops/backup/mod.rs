//! Consistent backups and restores of the database (`keel backup FILE`, `keel restore FILE`).
//!
//! A backup is one file in the engine's own format plus `FILE.manifest.json`, which records the
//! applied migrations and the row count of every table *in the snapshot the file holds*:
//!
//! - SQLite: `VACUUM INTO` a temporary file beside FILE. It reads in one transaction, so the copy
//!   is the database as of one instant while Keel keeps writing (WAL). The rows are counted in the
//!   copy itself.
//! - Postgres: a `REPEATABLE READ` transaction exports its snapshot, counts the rows in it, and
//!   `pg_dump --snapshot` dumps exactly that snapshot while the transaction stays open.
//!
//! Either way FILE appears only once complete (a temporary file, then a link that never replaces
//! an existing file). A restore goes into an empty database (or, with `force`, replaces its
//! contents), then reports the migration state and compares the row counts with the manifest.
//! With `verify` it goes into a scratch database that is removed afterwards, and the target is not
//! touched. No message carries the database URL or its password.

mod files;
mod pgtools;
mod postgres;
mod sqlite;
mod toc;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::store::migrate::{MigrationStatus, Migrator, State, VerifyReport};
use crate::store::{Db, Engine};

pub use files::manifest_path;

/// What a backup holds, written beside it as `FILE.manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(with = "engine_name")]
    pub engine: Engine,
    pub created_at: DateTime<Utc>,
    /// The versions recorded in `keel_migrations`, ascending.
    pub migrations: Vec<i64>,
    /// Every table of the database (Postgres: of its schema) and its row count in the snapshot.
    pub tables: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Copy)]
pub struct RestoreOptions {
    /// Restore into a scratch database (removed afterwards) and compare, instead of the target.
    pub verify: bool,
    /// Replace the contents of a target that is not empty.
    pub force: bool,
    /// Bounds connecting, lock waits and the migration checks.
    pub timeout: Duration,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        Self {
            verify: false,
            force: false,
            timeout: Duration::from_secs(300),
        }
    }
}

/// One table after a restore, next to the manifest's count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableCheck {
    pub table: String,
    /// Rows in the backup per its manifest (`None`: no manifest, or not in it).
    pub backup: Option<i64>,
    /// Rows in the restored database (`None`: the table is not there).
    pub restored: Option<i64>,
    pub matches: bool,
}

/// What a restore did and found.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub engine: Engine,
    /// Restored into a scratch database, since removed, instead of the target.
    pub verified: bool,
    /// The scratch database: a file (SQLite) or a database name (Postgres).
    pub scratch: Option<String>,
    /// The manifest found beside the backup, if any.
    pub manifest: Option<Manifest>,
    pub tables: Vec<TableCheck>,
    /// The migration versions recorded in the restored database.
    pub migrations_applied: Vec<i64>,
    pub status: Vec<MigrationStatus>,
    pub verify: VerifyReport,
    /// Why `ok` is false; empty when it is true.
    pub problems: Vec<String>,
    pub ok: bool,
}

impl RestoreReport {
    /// Migrations this build knows that the restored database has not applied.
    pub fn pending(&self) -> Vec<i64> {
        self.status
            .iter()
            .filter(|s| s.state == State::Pending)
            .map(|s| s.version)
            .collect()
    }
}

/// What backing up or restoring can fail with. No message contains the URL or the password.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{} exists; a backup never replaces a file, choose a new name", .0.display())]
    Exists(PathBuf),
    #[error("{} was not found", .0.display())]
    NotFound(PathBuf),
    #[error("{} is neither a SQLite database nor a pg_dump archive (custom format), so not a keel backup", .0.display())]
    UnknownFormat(PathBuf),
    #[error("{tool} was not found on PATH; install the PostgreSQL client tools (Debian: apt install postgresql-client)")]
    ToolMissing { tool: &'static str },
    #[error("{tool} failed: {message}")]
    Tool { tool: &'static str, message: String },
    #[error("the backup is a {backup} database but DATABASE_URL names {target}; restore into a {backup} database (`keel db copy` moves data between engines)")]
    EngineMismatch {
        backup: &'static str,
        target: &'static str,
    },
    #[error("the backup holds the Postgres schema {backup:?} but DATABASE_URL's search_path resolves to {target:?}; a pg_dump archive restores into the schema it was taken from, so name {backup:?} in the search_path of DATABASE_URL")]
    SchemaMismatch { backup: String, target: String },
    #[error("the target database is not empty ({0}); restore only into an empty database, or pass --force to replace its contents")]
    NotEmpty(String),
    #[error("the backup is damaged: {0}")]
    Damaged(String),
    #[error("cannot create the scratch database that --verify restores into: {0}; the DATABASE_URL role needs the CREATEDB privilege")]
    ScratchRefused(String),
    #[error("{0}")]
    Url(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("migration check failed: {0}")]
    Migrate(String),
    #[error("{context}: {message}")]
    Io { context: String, message: String },
    #[error("the manifest {} is not valid: {message}", .path.display())]
    Manifest { path: PathBuf, message: String },
}

impl BackupError {
    /// Whether the error is bad usage or configuration (exit 2) rather than a failed operation.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            BackupError::EngineMismatch { .. }
                | BackupError::SchemaMismatch { .. }
                | BackupError::Url(_)
        )
    }

    fn io(context: impl Into<String>, e: std::io::Error) -> Self {
        BackupError::Io {
            context: context.into(),
            message: e.to_string(),
        }
    }
}

/// Writes a consistent snapshot of the database at `url` to `file` (which must not exist) and its
/// manifest to `FILE.manifest.json`. Safe while Keel runs against the database.
pub async fn backup(
    url: &SecretString,
    file: &Path,
    timeout: Duration,
) -> Result<Manifest, BackupError> {
    let engine = engine_of(url)?;
    let file = files::absolute(file)?;
    if files::exists(&file) {
        return Err(BackupError::Exists(file));
    }
    match file.parent() {
        Some(dir) if dir.is_dir() => {}
        Some(dir) => return Err(BackupError::NotFound(dir.to_path_buf())),
        None => return Err(BackupError::Url("FILE names no file".into())),
    }
    let manifest = match engine {
        Engine::Sqlite => sqlite::backup(url.expose_secret(), &file, timeout).await?,
        Engine::Postgres => postgres::backup(url.expose_secret(), &file, timeout).await?,
    };
    files::write_manifest(&file, &manifest)?;
    Ok(manifest)
}

/// Restores the backup `file` into the database at `url` (or, with `verify`, into a scratch
/// database) and checks the result against the manifest and the migrations.
pub async fn restore(
    url: &SecretString,
    file: &Path,
    options: RestoreOptions,
) -> Result<RestoreReport, BackupError> {
    let target = engine_of(url)?;
    let file = files::absolute(file)?;
    let kind = files::detect(&file)?;
    if kind != target {
        return Err(BackupError::EngineMismatch {
            backup: name(kind),
            target: name(target),
        });
    }
    let manifest = files::read_manifest(&file)?;
    match kind {
        Engine::Sqlite => sqlite::restore(url.expose_secret(), &file, manifest, options).await,
        Engine::Postgres => postgres::restore(url.expose_secret(), &file, manifest, options).await,
    }
}

fn engine_of(url: &SecretString) -> Result<Engine, BackupError> {
    Db::engine_of(url).ok_or_else(|| {
        BackupError::Url("DATABASE_URL must start with sqlite:// or postgres://".into())
    })
}

pub(crate) fn name(engine: Engine) -> &'static str {
    match engine {
        Engine::Sqlite => "sqlite",
        Engine::Postgres => "postgres",
    }
}

/// The tables of a database with their row counts, and its applied migrations.
#[derive(Debug, Default)]
struct Counts {
    tables: BTreeMap<String, i64>,
    migrations: Vec<i64>,
}

impl Counts {
    /// Tables with rows, as `name: n rows`, for a "not empty" message.
    fn non_empty(&self) -> Option<String> {
        let listed: Vec<String> = self
            .tables
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(t, n)| format!("{t}: {n} rows"))
            .collect();
        (!listed.is_empty()).then(|| listed.join(", "))
    }
}

/// Keeps secrets out of messages: the URL and its password become `***`.
struct Redact {
    secrets: Vec<String>,
}

impl Redact {
    fn new(url: &str) -> Self {
        let mut secrets = vec![url.to_string()];
        if let Some(password) = pgtools::password_of(url).filter(|p| !p.is_empty()) {
            secrets.push(password);
        }
        if let Some(raw) = pgtools::raw_password_of(url).filter(|p| !p.is_empty()) {
            secrets.push(raw);
        }
        Self { secrets }
    }

    fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            out = out.replace(secret.as_str(), "***");
        }
        out
    }

    fn db(&self, e: sqlx::Error) -> BackupError {
        BackupError::Database(self.text(&e.to_string()))
    }
}

/// Runs the migration checks on the restored database at `url` and compares with the manifest.
async fn report(
    engine: Engine,
    url: &str,
    manifest: Option<Manifest>,
    counts: Counts,
    scratch: Option<String>,
    timeout: Duration,
) -> Result<RestoreReport, BackupError> {
    let redact = Redact::new(url);
    let migrate_err =
        |e: crate::store::migrate::MigrateError| BackupError::Migrate(redact.text(&e.to_string()));
    let migrator =
        Migrator::new(&SecretString::from(url.to_string()), timeout).map_err(migrate_err)?;
    let status = migrator.status().await.map_err(migrate_err)?;
    let verify = migrator.verify().await.map_err(migrate_err)?;
    let verified = scratch.is_some();

    let mut names: Vec<&String> = counts.tables.keys().collect();
    if let Some(m) = &manifest {
        names.extend(m.tables.keys());
    }
    names.sort();
    names.dedup();
    let tables: Vec<TableCheck> = names
        .into_iter()
        .map(|table| {
            let restored = counts.tables.get(table).copied();
            let backup = manifest.as_ref().and_then(|m| m.tables.get(table).copied());
            let matches = match &manifest {
                Some(_) => backup == restored,
                None => restored.is_some(),
            };
            TableCheck {
                table: table.clone(),
                backup,
                restored,
                matches,
            }
        })
        .collect();

    let mut problems = Vec::new();
    for t in tables.iter().filter(|t| !t.matches) {
        let show = |n: Option<i64>| n.map_or("no such table".to_string(), |n| format!("{n} rows"));
        problems.push(format!(
            "table {}: the backup's manifest has {}, the restore has {}",
            t.table,
            show(t.backup),
            show(t.restored)
        ));
    }
    if let Some(m) = &manifest {
        if m.engine != engine {
            problems.push(format!(
                "the manifest describes a {} backup, the file is {}",
                name(m.engine),
                name(engine)
            ));
        }
        if m.migrations != counts.migrations {
            problems.push(format!(
                "migrations: the manifest has {:?}, the restore has {:?}",
                m.migrations, counts.migrations
            ));
        }
    }
    for object in &verify.missing {
        problems.push(format!("missing {object}"));
    }
    for v in &verify.modified {
        problems.push(format!("migration {v:04} was changed after it was applied"));
    }
    for v in &verify.unknown {
        problems.push(format!(
            "migration {v:04} is applied but unknown to this build"
        ));
    }
    if verified {
        for v in &verify.pending {
            problems.push(format!("migration {v:04} is not applied"));
        }
    }
    Ok(RestoreReport {
        engine,
        verified,
        scratch,
        manifest,
        tables,
        migrations_applied: counts.migrations,
        status,
        verify,
        ok: problems.is_empty(),
        problems,
    })
}

mod engine_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::store::Engine;

    pub fn serialize<S: Serializer>(engine: &Engine, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(super::name(*engine))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Engine, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "sqlite" => Ok(Engine::Sqlite),
            "postgres" => Ok(Engine::Postgres),
            other => Err(serde::de::Error::custom(format!(
                "unknown engine {other:?} (expected sqlite or postgres)"
            ))),
        }
    }
}
