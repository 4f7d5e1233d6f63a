//! `keel sentry test`: a launch check that error reports reach Sentry.

use clap::Subcommand;
use keel::telemetry::sentry::{send_test_event, TestEventError};
use serde_json::json;

use crate::exit::{Exit, Output};
use crate::settings;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: SentryCommand,
}

#[derive(Debug, Subcommand)]
enum SentryCommand {
    /// Send a test event to SENTRY_DSN and print its id once Sentry has accepted it (exit 1 when
    /// Sentry refuses it or cannot be reached, 2 without a valid SENTRY_DSN).
    Test,
}

pub async fn run(args: Args, out: Output) -> Exit {
    let SentryCommand::Test = args.command;
    let src = match settings::source() {
        Ok(src) => src,
        Err(exit) => return exit,
    };
    let settings = match settings::load_for(&src, &["SENTRY_"]) {
        Ok(settings) => settings,
        Err(exit) => return exit,
    };
    match send_test_event(&settings.telemetry, &settings.role.report_tags()).await {
        Ok(id) => {
            let id = id.simple().to_string();
            if out.json {
                out.print_json(&json!({ "delivered": true, "event_id": id }));
            } else {
                println!("Sentry accepted the test event: event id {id}");
                println!(
                    "Find it in Sentry's issues (search for the event id) to finish the check."
                );
            }
            Exit::Ok
        }
        Err(e @ (TestEventError::NoDsn | TestEventError::InvalidDsn(_))) => {
            eprintln!("error: {e}");
            Exit::Usage
        }
        Err(e) => {
            if out.json {
                out.print_json(&json!({ "delivered": false, "error": e.to_string() }));
            }
            eprintln!("error: {e}");
            Exit::Failed
        }
    }
}
