//! `keel db copy --from URL --to URL`: every row of Keel's tables from one database to another
//! (see `keel::ops::db_copy`).

use std::time::Duration;

use clap::Subcommand;
use keel::ops::db_copy::{self, engine_name};
use serde_json::{json, Map, Value};

use crate::exit::{Exit, Output};

/// How long to wait for a connection, the target's migration lock and its table locks.
const WAIT: Duration = Duration::from_secs(300);

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: DbCommand,
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Copy all data between databases (SQLite to Postgres, Postgres to SQLite, or alike).
    #[command(long_about = COPY_HELP)]
    Copy {
        /// The database to read: sqlite://PATH or postgres://… It must have every migration of
        /// this build applied.
        #[arg(long, value_name = "URL")]
        from: String,
        /// The database to fill: sqlite://PATH or postgres://… It is migrated up first and must
        /// then hold no rows.
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

const COPY_HELP: &str = "\
Copy all data between databases (SQLite to Postgres, Postgres to SQLite, or alike).

The source must have every migration of this build applied (else run `keel migrate up` against it).
The target is migrated up first (taking the same lock as `keel migrate up`) and must hold no rows in
any copied table; the copy never merges or overwrites.

Copied: every table the migrations create except the migration history, `users` first and then the
rest alphabetically (there are no foreign keys); the columns both sides share.

Consistency: the source is read in one read transaction (a snapshot, even while Keel runs on it).
The target is written in one transaction that commits only after every table's row count matches
the source's; on any error nothing is committed and the target stays empty. Rows move in
primary-key order, 1,000 per batch, with multi-row INSERTs.

Types are converted by the target column: SQLite INTEGER milliseconds <-> timestamptz, 0/1 <->
boolean, TEXT <-> jsonb and uuid, BLOB <-> bytea. Postgres id sequences are moved past the largest
copied id. An unknown column type fails, naming table.column.

Prints the rows per table, the total and the time taken (with --json:
{\"from\",\"to\",\"tables\":{NAME:rows},\"rows\",\"seconds\"}). URLs are never printed, only engines.
Exit codes: 0 copied, 1 the copy failed (nothing committed), 2 bad usage.";

pub async fn run(args: Args, out: Output) -> Exit {
    match args.command {
        DbCommand::Copy { from, to } => copy(&from, &to, out).await,
    }
}

async fn copy(from: &str, to: &str, out: Output) -> Exit {
    for (flag, url) in [("--from", from), ("--to", to)] {
        if let Err(reason) = keel::store::check_url(url) {
            eprintln!("error: {flag} {reason}");
            return Exit::Usage;
        }
    }
    let report = match db_copy::copy(from, to, WAIT).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return if e.is_usage() {
                Exit::Usage
            } else {
                Exit::Failed
            };
        }
    };
    let (source, target) = (engine_name(report.from), engine_name(report.to));
    let seconds = report.elapsed.as_secs_f64();
    if out.json {
        let tables: Map<String, Value> = report
            .tables
            .iter()
            .map(|t| (t.table.clone(), json!(t.rows)))
            .collect();
        out.print_json(&json!({
            "from": source,
            "to": target,
            "tables": tables,
            "rows": report.rows,
            "seconds": seconds,
        }));
    } else {
        println!("copied {source} -> {target}");
        let width = report
            .tables
            .iter()
            .map(|t| t.table.len())
            .max()
            .unwrap_or(0)
            .max(5);
        for t in &report.tables {
            println!("  {:<width$}  {:>10}", t.table, t.rows);
        }
        println!("  {:<width$}  {:>10}", "total", report.rows);
        println!("{} rows in {seconds:.2} s", report.rows);
    }
    Exit::Ok
}
