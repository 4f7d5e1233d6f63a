use clap::{Subcommand, ValueEnum};
use serde_json::json;

use crate::context::{self, failed, ACTOR};
use crate::exit::{Exit, Output};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: FlagsCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Switch {
    On,
    Off,
}

#[derive(Debug, Subcommand)]
enum FlagsCommand {
    /// Every kill switch and its state.
    List,
    /// Turn a kill switch on or off for every process (scheduler, enqueue, workers, queue:NAME).
    Set { name: String, state: Switch },
}

pub async fn run(args: Args, out: Output) -> Exit {
    let services = match context::services() {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    match args.command {
        FlagsCommand::List => match services.flags.list().await {
            Ok(flags) => {
                if out.json {
                    out.print_json(&json!({ "flags": flags }));
                } else {
                    for f in flags {
                        println!(
                            "{:<24} {:<4} ({})",
                            f.name,
                            if f.enabled { "on" } else { "off" },
                            f.source
                        );
                    }
                }
                Exit::Ok
            }
            Err(e) => failed(e),
        },
        FlagsCommand::Set { name, state } => {
            let enabled = matches!(state, Switch::On);
            match services.flags.set(&name, enabled, ACTOR).await {
                Ok(()) => {
                    if out.json {
                        out.print_json(&json!({ "name": name, "enabled": enabled }));
                    } else {
                        println!(
                            "{name} is {} (every process within 5 s)",
                            if enabled { "on" } else { "off" }
                        );
                    }
                    Exit::Ok
                }
                Err(keel::flags::FlagError::Unknown(n)) => {
                    eprintln!(
                        "error: unknown flag {n:?}: use scheduler, enqueue, workers or queue:NAME"
                    );
                    Exit::Usage
                }
                Err(e) => failed(e),
            }
        }
    }
}
