use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Subcommand;
use keel::billing::{registry as providers, BillingError, Provider};
use keel::store::billing::EventFilter;
use serde_json::json;

use crate::context::{self, failed, ACTOR};
use crate::exit::{Exit, Output};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: WebhooksCommand,
}

/// A billing provider named on the command line: one of the providers Keel receives webhooks from.
fn provider_arg() -> impl TypedValueParser<Value = Provider> {
    PossibleValuesParser::new(providers::names()).try_map(|name| {
        providers::named(&name)
            .map(|p| p.id())
            .ok_or("not a billing provider")
    })
}

#[derive(Debug, Subcommand)]
enum WebhooksCommand {
    /// Stored billing events, newest received first (type, user, product, times, outcome; never
    /// the payload).
    Events {
        #[arg(long, value_parser = provider_arg())]
        provider: Option<Provider>,
        #[arg(long)]
        user: Option<String>,
        /// The provider's event type, e.g. INITIAL_PURCHASE or invoice.paid.
        #[arg(long = "type")]
        event_type: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Apply a stored event again from its sealed payload, under the current configuration
    /// (e.g. after adding its product to keel.toml). Safe to repeat; audited.
    Replay {
        #[arg(value_parser = provider_arg())]
        provider: Provider,
        event_id: String,
    },
}

pub async fn run(args: Args, out: Output) -> Exit {
    let services = match context::services() {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    match args.command {
        WebhooksCommand::Events {
            provider,
            user,
            event_type,
            limit,
        } => {
            if !(1..=10_000).contains(&limit) {
                eprintln!("error: --limit must be 1 to 10000");
                return Exit::Usage;
            }
            let filter = EventFilter {
                provider: provider.map(|p| p.as_str().to_string()),
                user_id: user,
                event_type,
                limit,
                ..EventFilter::default()
            };
            match services.db.billing_events(&filter).await {
                Ok(events) if out.json => {
                    out.print_json(&json!({ "events": events }));
                    Exit::Ok
                }
                Ok(events) => {
                    if events.is_empty() {
                        println!("no events");
                    }
                    for e in events {
                        println!(
                            "{} {:<10} {:<40} {:<28} user {:<20} {} ({})",
                            e.received_at.format("%Y-%m-%d %H:%M:%S"),
                            e.provider,
                            e.event_id,
                            e.event_type,
                            e.user_id.as_deref().unwrap_or("-"),
                            e.outcome,
                            e.environment
                        );
                    }
                    Exit::Ok
                }
                Err(e) => failed(e),
            }
        }
        WebhooksCommand::Replay { provider, event_id } => {
            match services.billing.replay(provider, &event_id, ACTOR).await {
                Ok(replayed) if out.json => {
                    out.print_json(&json!(replayed));
                    Exit::Ok
                }
                Ok(replayed) => {
                    println!(
                        "{} {} ({}) replayed for user {}: {}",
                        replayed.provider.as_str(),
                        replayed.event_id,
                        replayed.event_type,
                        replayed.user_id.as_deref().unwrap_or("-"),
                        replayed.outcome
                    );
                    Exit::Ok
                }
                Err(BillingError::Invalid(problems)) => {
                    for p in problems {
                        eprintln!("error: {}: {}", p.field, p.message);
                    }
                    Exit::Failed
                }
                Err(e) => failed(e),
            }
        }
    }
}
