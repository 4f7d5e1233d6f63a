use clap::Subcommand;
use serde_json::json;

use crate::context::{self, failed, ACTOR};
use crate::exit::{Exit, Output};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: SchedulesCommand,
}

#[derive(Debug, Subcommand)]
enum SchedulesCommand {
    /// Every schedule with its last and next firing.
    List,
    /// Fire a schedule now (once per period of its cron expression).
    Trigger { name: String },
}

pub async fn run(args: Args, out: Output) -> Exit {
    let services = match context::services() {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    match args.command {
        SchedulesCommand::List => match keel::ops::queues::report(&services).await {
            Ok(report) => {
                if out.json {
                    out.print_json(&json!({ "schedules": report.schedules }));
                } else {
                    for s in report.schedules {
                        let last = s
                            .last_fired_at
                            .map(|t| t.to_rfc3339())
                            .unwrap_or_else(|| "never".into());
                        let next = s
                            .next_fire_at
                            .map(|t| t.to_rfc3339())
                            .unwrap_or_else(|| "never".into());
                        let cron = match s.timezone.as_str() {
                            "UTC" => s.cron,
                            zone => format!("{} ({zone})", s.cron),
                        };
                        println!(
                            "{:<24} {:<16} {:<20} last {last}  next {next}",
                            s.name, cron, s.kind
                        );
                    }
                }
                Exit::Ok
            }
            Err(e) => failed(e),
        },
        SchedulesCommand::Trigger { name } => {
            match services.scheduler.trigger(&name, None, ACTOR).await {
                Ok(fired) => {
                    if out.json {
                        out.print_json(&json!(fired));
                    } else if fired.deduplicated {
                        println!("{name} already fired this period: job {}", fired.job_id);
                    } else {
                        println!("{name} fired: job {}", fired.job_id);
                    }
                    Exit::Ok
                }
                Err(keel::schedule::ScheduleError::Unknown(n)) => {
                    eprintln!("error: no schedule named {n:?}");
                    Exit::Usage
                }
                Err(e) => failed(e),
            }
        }
    }
}
