//! `keel migrate`: Keel's migrations (history `keel_migrations`), then the application's own
//! (history `keel_app_migrations`) when a custom binary's server has any.

use clap::Subcommand;
use keel::store::migrate::{Migration, Migrator, State};
use serde_json::json;

use crate::exit::{Exit, Output};
use crate::{settings, Build};

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
        /// Revert the application's own migrations instead of Keel's.
        #[arg(long)]
        app: bool,
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

/// Keel's runner, and the application's when it has migrations.
struct Runners {
    keel: Migrator,
    app: Option<Migrator>,
}

pub async fn run(args: Args, out: Output, build: Build<'_>) -> Exit {
    let src = match settings::source() {
        Ok(src) => src,
        Err(exit) => return exit,
    };
    let settings = match settings::load_for_database(&src) {
        Ok(settings) => settings,
        Err(exit) => return exit,
    };
    let server = build(settings);
    let database = &server.settings().database;
    let (url, pooler) = database.migration_target();
    let timeout = database.migration_timeout;
    let app = server.app_migrations();
    let runners = Migrator::new(url, timeout).and_then(|keel| {
        let app = if app.is_empty() {
            None
        } else {
            Some(Migrator::for_app(url, timeout, app)?.with_pooler(pooler))
        };
        Ok(Runners {
            keel: keel.with_pooler(pooler),
            app,
        })
    });
    let runners = match runners {
        Ok(runners) => runners,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Usage;
        }
    };
    match args.command {
        MigrateCommand::Up { dry_run } => up(&runners, dry_run, out).await,
        MigrateCommand::Down { to, app, dry_run } => {
            let migrator = match (app, &runners.app) {
                (false, _) => &runners.keel,
                (true, Some(migrator)) => migrator,
                (true, None) => {
                    eprintln!("error: this binary has no application migrations");
                    return Exit::Usage;
                }
            };
            match migrator.down(to, dry_run).await {
                Ok(reverted) => {
                    report(&[(migrator, reverted)], "revert", dry_run, out);
                    Exit::Ok
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Exit::Failed
                }
            }
        }
        MigrateCommand::Status => status(&runners, out).await,
        MigrateCommand::Verify { .. } => verify(&runners, out).await,
    }
}

/// Applies Keel's migrations, then the application's (whose tables may refer to Keel's).
async fn up(runners: &Runners, dry_run: bool, out: Output) -> Exit {
    let mut done = Vec::new();
    for migrator in std::iter::once(&runners.keel).chain(&runners.app) {
        match migrator.up(dry_run).await {
            Ok(applied) => done.push((migrator, applied)),
            Err(e) => {
                if done.iter().any(|(_, applied)| !applied.is_empty()) {
                    report(&done, "apply", dry_run, out);
                }
                eprintln!("error: {e}");
                return Exit::Failed;
            }
        }
    }
    report(&done, "apply", dry_run, out);
    Exit::Ok
}

/// The label of a history in text output: none for Keel's, `app` for the application's.
fn label(migrator: &Migrator) -> &'static str {
    if migrator.history() == keel::store::migrate::APP_HISTORY {
        "app "
    } else {
        ""
    }
}

fn report(done: &[(&Migrator, Vec<&'static Migration>)], verb: &str, dry_run: bool, out: Output) {
    let list = |migrations: &[&Migration]| {
        migrations
            .iter()
            .map(|m| json!({"version": m.version, "name": m.name}))
            .collect::<Vec<_>>()
    };
    if out.json {
        let mut value = json!({ "dry_run": dry_run, "migrations": [] });
        for (migrator, migrations) in done {
            let key = if label(migrator).is_empty() {
                "migrations"
            } else {
                "app_migrations"
            };
            value[key] = json!(list(migrations));
        }
        out.print_json(&value);
        return;
    }
    if done.iter().all(|(_, migrations)| migrations.is_empty()) {
        println!("nothing to {verb}");
        return;
    }
    let done_word = match (verb, dry_run) {
        (_, true) => format!("would {verb}"),
        ("apply", false) => "applied".into(),
        _ => "reverted".into(),
    };
    for (migrator, migrations) in done {
        for m in migrations {
            println!("{done_word} {}{:04} {}", label(migrator), m.version, m.name);
        }
    }
}

async fn status(runners: &Runners, out: Output) -> Exit {
    let mut all = Vec::new();
    for migrator in std::iter::once(&runners.keel).chain(&runners.app) {
        match migrator.status().await {
            Ok(s) => all.push((migrator, s)),
            Err(e) => {
                eprintln!("error: {e}");
                return Exit::Failed;
            }
        }
    }
    if out.json {
        let mut value = json!({});
        for (migrator, status) in &all {
            let key = if label(migrator).is_empty() {
                "migrations"
            } else {
                "app_migrations"
            };
            value[key] = json!(status);
        }
        out.print_json(&value);
    } else {
        for (migrator, status) in &all {
            if !label(migrator).is_empty() {
                println!("application migrations ({}):", migrator.history());
            }
            print_status(status);
        }
    }
    let bad = all
        .iter()
        .flat_map(|(_, status)| status)
        .any(|s| matches!(s.state, State::Modified | State::Unknown));
    if bad {
        Exit::Failed
    } else {
        Exit::Ok
    }
}

fn print_status(status: &[keel::store::migrate::MigrationStatus]) {
    for s in status {
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

async fn verify(runners: &Runners, out: Output) -> Exit {
    let mut reports = Vec::new();
    for migrator in std::iter::once(&runners.keel).chain(&runners.app) {
        match migrator.verify().await {
            Ok(r) => reports.push((migrator, r)),
            Err(e) => {
                eprintln!("error: {e}");
                return Exit::Failed;
            }
        }
    }
    let clean = reports.iter().all(|(_, r)| r.is_clean());
    if out.json {
        let mut value = json!({ "ok": clean });
        for (migrator, report) in &reports {
            let key = if label(migrator).is_empty() {
                "report"
            } else {
                "app_report"
            };
            value[key] = json!(report);
        }
        out.print_json(&value);
    } else if clean {
        println!("schema ok: every migration applied unchanged, every table and index present");
    } else {
        for (migrator, report) in &reports {
            let which = label(migrator);
            for v in &report.pending {
                println!("pending {which}migration {v:04}");
            }
            for v in &report.modified {
                println!("{which}migration {v:04} was changed after it was applied");
            }
            for v in &report.unknown {
                println!("{which}migration {v:04} is applied but unknown to this build");
            }
            for object in &report.missing {
                println!("missing {object}");
            }
        }
    }
    if clean {
        Exit::Ok
    } else {
        Exit::Failed
    }
}
