use std::time::Duration;

use serde_json::json;

use crate::exit::{Exit, Output};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Base URL of the instance, e.g. https://api.example.com
    url: String,
    /// Seconds each request may take.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Only check /health/live (for a container health check).
    #[arg(long)]
    live: bool,
    /// Billing providers whose webhook route must exist (comma-separated: revenuecat,stripe,whop).
    #[arg(long, value_delimiter = ',')]
    webhooks: Vec<String>,
}

pub async fn run(args: Args, out: Output) -> Exit {
    let options = keel::ops::smoke::SmokeOptions {
        live_only: args.live,
        webhooks: args.webhooks,
    };
    let known = keel::billing::registry::names();
    if let Some(other) = options
        .webhooks
        .iter()
        .find(|p| !known.contains(&p.as_str()))
    {
        eprintln!(
            "error: unknown provider {other:?} in --webhooks ({})",
            known.join(", ")
        );
        return Exit::Usage;
    }
    let timeout = Duration::from_secs(args.timeout);
    let outcomes = match keel::ops::smoke::run(&args.url, timeout, &options).await {
        Ok(outcomes) => outcomes,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Usage;
        }
    };
    let passed = outcomes.iter().all(|o| o.passed);
    if out.json {
        out.print_json(&json!({ "passed": passed, "checks": outcomes }));
    } else {
        for o in &outcomes {
            let mark = if o.passed { "ok  " } else { "FAIL" };
            println!("{mark} {:<28} {} ({} ms)", o.name, o.detail, o.latency_ms);
        }
        let failed = outcomes.iter().filter(|o| !o.passed).count();
        println!("{} passed, {} failed", outcomes.len() - failed, failed);
    }
    if passed {
        Exit::Ok
    } else {
        Exit::Failed
    }
}
