//! The `keel` command as a library: [`run`] parses the arguments and runs the subcommand, so an
//! application's own binary keeps every `keel` subcommand (`serve`, `migrate`, `queue`, `smoke`,
//! `config check`, `dev`, `backup`, …) with its own routes, job handlers, state and migrations.
//!
//! Exit codes: 0 ok, 1 the check or operation failed, 2 bad usage or configuration.
//!
//! ```no_run
//! use keel::Server;
//!
//! fn main() -> std::process::ExitCode {
//!     keel_cli::run(|settings| Server::new(settings) /* .routes(…).jobs(…).migrations(…) */)
//! }
//! ```

mod bench;
mod commands;
mod context;
mod exit;
mod settings;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keel::{Server, Settings};

use exit::Exit;

/// Builds the application's server from the settings a command loaded. `serve` runs what it
/// returns; `migrate` reads its migrations. It is called once per command and should only
/// assemble (no network or database work: the server connects when it runs).
pub(crate) type Build<'a> = &'a (dyn Fn(Settings) -> Server + Sync);

#[derive(Debug, Parser)]
#[command(
    name = "keel",
    version,
    about = "The production backend for subscription apps"
)]
struct Cli {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (API, worker and scheduler, per role).
    Serve(commands::serve::Args),
    /// Schema migrations.
    Migrate(commands::migrate::Args),
    /// Configuration.
    Config(commands::config::Args),
    /// Check a running instance after a deploy.
    Smoke(commands::smoke::Args),
    /// Queue operations.
    Queue(commands::queue::Args),
    /// Runtime kill switches.
    Flags(commands::flags::Args),
    /// Cron schedules.
    Schedules(commands::schedules::Args),
    /// One-screen operations report.
    Report,
    /// Built-in load generators.
    Bench(commands::bench::Args),
    /// Development helpers.
    Dev(commands::dev::Args),
    /// Consistent backup of the database to FILE.
    Backup(commands::backup::BackupArgs),
    /// Restore a backup into an empty database.
    Restore(commands::backup::RestoreArgs),
    /// Database operations: copy all data between databases.
    Db(commands::db::Args),
    /// Stored billing webhook events: list them, replay one.
    Webhooks(commands::webhooks::Args),
    /// Error reporting: send a test event to Sentry.
    Sentry(commands::sentry::Args),
    /// Object storage: list, usage, move between backends.
    Storage(commands::storage::Args),
}

/// Runs the `keel` command line with the arguments of this process and returns its exit code.
///
/// `build` turns the settings a command loaded (from the environment, `.env` and `keel.toml`)
/// into the application's [`Server`]: the stock `keel` binary passes [`Server::new`]; an
/// application adds its routes, jobs, state and migrations. `build` is called by the commands
/// that need the application (`serve`, `migrate`) and must only assemble: the server connects
/// when it runs.
pub fn run<F>(build: F) -> ExitCode
where
    F: Fn(Settings) -> Server + Sync,
{
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Failed.into();
        }
    };
    let out = exit::Output { json: cli.json };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => commands::serve::run(args, &build).await,
            Command::Migrate(args) => commands::migrate::run(args, out, &build).await,
            Command::Config(args) => commands::config::run(args, out, &build),
            Command::Smoke(args) => commands::smoke::run(args, out).await,
            Command::Queue(args) => commands::queue::run(args, out, &build).await,
            Command::Flags(args) => commands::flags::run(args, out).await,
            Command::Schedules(args) => commands::schedules::run(args, out).await,
            Command::Report => commands::report::run(out).await,
            Command::Bench(args) => commands::bench::run(args, out).await,
            Command::Dev(args) => commands::dev::run(args, out).await,
            Command::Backup(args) => commands::backup::run_backup(args, out).await,
            Command::Restore(args) => commands::backup::run_restore(args, out).await,
            Command::Db(args) => commands::db::run(args, out).await,
            Command::Webhooks(args) => commands::webhooks::run(args, out).await,
            Command::Sentry(args) => commands::sentry::run(args, out).await,
            Command::Storage(args) => commands::storage::run(args, out).await,
        }
    });
    result.into()
}

/// `keel report | head` closes stdout early: the next print fails with a broken pipe. That ends
/// the command quietly, as a shell tool does (exit 141, "killed by SIGPIPE"), not with a panic.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}
