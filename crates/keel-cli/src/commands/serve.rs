use clap::ValueEnum;

use crate::exit::Exit;
use crate::{settings, Build};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Api,
    Worker,
    All,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which parts to run (default: PROCESS_ROLE, else all).
    #[arg(long, value_enum)]
    role: Option<RoleArg>,
}

pub async fn run(args: Args, build: Build<'_>) -> Exit {
    let mut src = match settings::source() {
        Ok(src) => src,
        Err(exit) => return exit,
    };
    if let Some(role) = args.role {
        let name = match role {
            RoleArg::Api => "api",
            RoleArg::Worker => "worker",
            RoleArg::All => "all",
        };
        src = src.with("PROCESS_ROLE", name);
    }
    let settings = match settings::load(&src) {
        Ok(settings) => settings,
        Err(exit) => return exit,
    };
    keel::telemetry::init(&settings.telemetry);
    match build(settings).run().await {
        Ok(()) => Exit::Ok,
        Err(e) => {
            tracing::error!(error = %e, "keel stopped with an error");
            keel::telemetry::sentry::flush(keel::telemetry::sentry::FLUSH_TIMEOUT).await;
            eprintln!("error: {e}");
            Exit::Failed
        }
    }
}
