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
}

pub async fn run(args: Args, out: Output) -> Exit {
    let outcomes = match keel::ops::smoke::run(&args.url, Duration::from_secs(args.timeout)).await {
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
