use clap::Subcommand;
use keel::store::migrate::{Migration, Migrator, State};
use serde_json::json;

use crate::exit::{Exit, Output};
use crate::settings;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: MigrateCommand,
}

#[derive(Debug, Subcommand)]
enum MigrateCommand {
    /// Apply every pending migration.
    Up {
        /// Print what would be applied; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Revert applied migrations above VERSION, newest first (0 reverts all).
    Down {
        #[arg(long = "to", value_name = "VERSION")]
        to: i64,
        /// Print what would be reverted; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List every migration and whether it is applied.
    Status,
    /// Check that every migration is applied unchanged and every expected table and index exists.
    Verify {
        /// Accepted for symmetry: verify never changes anything.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(args: Args, out: Output) -> Exit {
    let src = match settings::source() {
        Ok(src) => src,
        Err(exit) => return exit,
    };
    let settings = match settings::load_for_database(&src) {
        Ok(settings) => settings,
        Err(exit) => return exit,
    };
    let (url, pooler) = settings.database.migration_target();
    let migrator = match Migrator::new(url, settings.database.migration_timeout) {
        Ok(m) => m.with_pooler(pooler),
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Usage;
        }
    };
    match args.command {
        MigrateCommand::Up { dry_run } => {
            changed(migrator.up(dry_run).await, "apply", dry_run, out)
        }
        MigrateCommand::Down { to, dry_run } => {
            changed(migrator.down(to, dry_run).await, "revert", dry_run, out)
        }
        MigrateCommand::Status => status(&migrator, out).await,
        MigrateCommand::Verify { .. } => verify(&migrator, out).await,
    }
}

fn changed(
    result: Result<Vec<&'static Migration>, keel::store::migrate::MigrateError>,
    verb: &str,
    dry_run: bool,
    out: Output,
) -> Exit {
    let migrations = match result {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Failed;
        }
    };
    if out.json {
        let list: Vec<_> = migrations
            .iter()
            .map(|m| json!({"version": m.version, "name": m.name}))
            .collect();
        out.print_json(&json!({ "dry_run": dry_run, "migrations": list }));
    } else if migrations.is_empty() {
        println!("nothing to {verb}");
    } else {
        let done = match (verb, dry_run) {
            (_, true) => format!("would {verb}"),
            ("apply", false) => "applied".into(),
            _ => "reverted".into(),
        };
        for m in &migrations {
            println!("{done} {:04} {}", m.version, m.name);
        }
    }
    Exit::Ok
}

async fn status(migrator: &Migrator, out: Output) -> Exit {
    let status = match migrator.status().await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Failed;
        }
    };
    if out.json {
        out.print_json(&json!({ "migrations": status }));
    } else {
        for s in &status {
            let at = s
                .applied_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default();
            let state = match s.state {
                State::Applied => "applied",
                State::Pending => "pending",
                State::Modified => "MODIFIED",
                State::Unknown => "UNKNOWN",
            };
            println!("{:04} {:<32} {:<8} {at}", s.version, s.name, state);
        }
    }
    if status
        .iter()
        .any(|s| matches!(s.state, State::Modified | State::Unknown))
    {
        Exit::Failed
    } else {
        Exit::Ok
    }
}

async fn verify(migrator: &Migrator, out: Output) -> Exit {
    let report = match migrator.verify().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Failed;
        }
    };
    if out.json {
        out.print_json(&json!({ "ok": report.is_clean(), "report": report }));
    } else if report.is_clean() {
        println!("schema ok: every migration applied unchanged, every table and index present");
    } else {
        for v in &report.pending {
            println!("pending migration {v:04}");
        }
        for v in &report.modified {
            println!("migration {v:04} was changed after it was applied");
        }
        for v in &report.unknown {
            println!("migration {v:04} is applied but unknown to this build");
        }
        for object in &report.missing {
            println!("missing {object}");
        }
    }
    if report.is_clean() {
        Exit::Ok
    } else {
        Exit::Failed
    }
}
