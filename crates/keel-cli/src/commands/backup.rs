//! `keel backup FILE` and `keel restore FILE [--verify] [--force]`.

use std::path::PathBuf;

use keel::ops::backup::{self, BackupError, Manifest, RestoreOptions, RestoreReport};

use crate::exit::{Exit, Output};
use crate::settings;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Safe while keel runs: SQLite copies one consistent snapshot (VACUUM INTO); Postgres \
                  runs pg_dump on a snapshot whose rows the manifest counts (needs the PostgreSQL \
                  client tools). The manifest is written to FILE.manifest.json."
)]
pub struct BackupArgs {
    /// Where to write the backup; must not exist.
    pub file: PathBuf,
    /// After a successful backup, also write its time and size to this file in the Prometheus
    /// text format (for node_exporter's textfile collector), replacing it atomically.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "The target is DATABASE_URL, of the backup's engine, and must be empty unless \
                  --force: for SQLite no non-empty file, for Postgres no table with rows in its \
                  schema (a migrated database counts as not empty). It must not be in use: \
                  stop every keel process using it first. A SQLite restore replaces the file \
                  atomically; a Postgres restore runs pg_restore in one transaction (needs the \
                  PostgreSQL client tools and the schema the backup was taken from in the \
                  search_path). With --verify nothing is written to DATABASE_URL: the backup goes \
                  into a scratch database (Postgres: CREATE DATABASE on the same server), is \
                  compared with FILE.manifest.json and the migrations, and is removed again."
)]
pub struct RestoreArgs {
    /// The backup file (a SQLite database or a pg_dump custom-format archive).
    pub file: PathBuf,
    /// Restore into a scratch database instead, compare row counts and migrations, then remove it.
    #[arg(long)]
    pub verify: bool,
    /// Replace the contents of a target database that is not empty.
    #[arg(long)]
    pub force: bool,
}

pub async fn run_backup(args: BackupArgs, out: Output) -> Exit {
    let settings = match load() {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let database = &settings.database;
    match backup::backup(
        database.session_url(),
        &args.file,
        database.migration_timeout,
    )
    .await
    {
        Ok(manifest) => {
            print_manifest(&args.file, &manifest, out);
            match &args.metrics_file {
                Some(path) => match write_metrics(path, &args.file) {
                    Ok(()) => Exit::Ok,
                    Err(e) => {
                        eprintln!(
                            "error: the backup succeeded, but {} could not be written: {e}",
                            path.display()
                        );
                        Exit::Failed
                    }
                },
                None => Exit::Ok,
            }
        }
        Err(e) => failed(&e),
    }
}

/// `keel_backup_last_success_timestamp_seconds` and `keel_backup_size_bytes` for the backup
/// `file` just written, into `path` through a temporary file beside it and a rename, so a
/// collector never reads half a file.
fn write_metrics(path: &std::path::Path, file: &std::path::Path) -> std::io::Result<()> {
    let size = std::fs::metadata(file)?.len();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    let text = format!(
        "# HELP keel_backup_last_success_timestamp_seconds When the last successful keel backup finished (Unix time).\n\
         # TYPE keel_backup_last_success_timestamp_seconds gauge\n\
         keel_backup_last_success_timestamp_seconds {now:.3}\n\
         # HELP keel_backup_size_bytes Size of the file of the last successful keel backup.\n\
         # TYPE keel_backup_size_bytes gauge\n\
         keel_backup_size_bytes {size}\n"
    );
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

pub async fn run_restore(args: RestoreArgs, out: Output) -> Exit {
    let settings = match load() {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let options = RestoreOptions {
        verify: args.verify,
        force: args.force,
        timeout: settings.database.migration_timeout,
    };
    match backup::restore(settings.database.session_url(), &args.file, options).await {
        Ok(report) => {
            print_report(&args.file, &report, out);
            if report.ok {
                Exit::Ok
            } else {
                Exit::Failed
            }
        }
        Err(e) => failed(&e),
    }
}

fn load() -> Result<keel::Settings, Exit> {
    let src = settings::source()?;
    settings::load_for_database(&src)
}

fn failed(e: &BackupError) -> Exit {
    eprintln!("error: {e}");
    if e.is_usage() {
        Exit::Usage
    } else {
        Exit::Failed
    }
}

fn print_manifest(file: &std::path::Path, manifest: &Manifest, out: Output) {
    if out.json {
        match serde_json::to_value(manifest) {
            Ok(value) => out.print_json(&value),
            Err(e) => eprintln!("error: cannot encode JSON: {e}"),
        }
        return;
    }
    let versions: Vec<String> = manifest.migrations.iter().map(|v| v.to_string()).collect();
    println!(
        "backup written to {} ({}, migrations applied: {})",
        file.display(),
        backup_engine(manifest),
        if versions.is_empty() {
            "none".to_string()
        } else {
            versions.join(", ")
        }
    );
    println!(
        "manifest written to {}",
        backup::manifest_path(file).display()
    );
    let width = manifest
        .tables
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(5)
        .max(5);
    println!("{:<width$}  {:>10}", "table", "rows");
    for (table, rows) in &manifest.tables {
        println!("{table:<width$}  {rows:>10}");
    }
}

fn backup_engine(manifest: &Manifest) -> &'static str {
    match manifest.engine {
        keel::store::Engine::Sqlite => "sqlite",
        keel::store::Engine::Postgres => "postgres",
    }
}

fn print_report(file: &std::path::Path, report: &RestoreReport, out: Output) {
    if out.json {
        match serde_json::to_value(report) {
            Ok(value) => out.print_json(&value),
            Err(e) => eprintln!("error: cannot encode JSON: {e}"),
        }
        return;
    }
    match &report.scratch {
        Some(scratch) => println!(
            "verified {} by restoring it into a scratch database ({scratch}, removed again)",
            file.display()
        ),
        None => println!("restored {} into DATABASE_URL", file.display()),
    }
    if report.manifest.is_none() {
        println!(
            "no manifest at {}: row counts are shown, not compared",
            backup::manifest_path(file).display()
        );
    }
    let width = report
        .tables
        .iter()
        .map(|t| t.table.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let show = |n: Option<i64>| n.map_or("-".to_string(), |n| n.to_string());
    println!("{:<width$}  {:>10}  {:>10}", "table", "backup", "restored");
    for t in &report.tables {
        let mark = if t.matches { "ok" } else { "DIFFERS" };
        println!(
            "{:<width$}  {:>10}  {:>10}  {mark}",
            t.table,
            show(t.backup),
            show(t.restored)
        );
    }
    let applied = report
        .status
        .iter()
        .filter(|s| s.state == keel::store::migrate::State::Applied)
        .count();
    let pending = report.pending();
    println!(
        "migrations: {applied} of {} applied; schema verify: {}",
        report.status.len(),
        if report.verify.is_clean() {
            "clean"
        } else {
            "NOT clean"
        }
    );
    if !pending.is_empty() && report.scratch.is_none() {
        println!(
            "hint: the backup predates {} migration(s) of this build; run `keel migrate up`",
            pending.len()
        );
    }
    if report.ok {
        println!("ok");
    } else {
        for problem in &report.problems {
            println!("problem: {problem}");
        }
    }
}
