use crate::context::{self, failed};
use crate::exit::{Exit, Output};

pub async fn run(out: Output) -> Exit {
    let services = match context::services() {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let report = match keel::ops::queues::report(&services).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    if out.json {
        match serde_json::to_value(&report) {
            Ok(value) => out.print_json(&value),
            Err(e) => return failed(e),
        }
        return Exit::Ok;
    }
    println!(
        "Keel report, {}",
        report.generated_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    println!("\nQueues           backlog  running  oldest waiting  paused");
    for (name, q) in &report.queues {
        let oldest = q
            .oldest_waiting_s
            .map(|s| format!("{s:.1} s"))
            .unwrap_or_else(|| "-".into());
        println!(
            "  {:<14} {:>7}  {:>7}  {:>14}  {}",
            name,
            q.backlog,
            q.running,
            oldest,
            if q.paused { "yes" } else { "no" }
        );
    }
    println!("\nFailed jobs      queue / kind                        retryable  discarded");
    if report.failed.is_empty() {
        println!("  none");
    }
    for f in &report.failed {
        println!(
            "  {:<48} {:>9}  {:>9}",
            format!("{} / {}", f.queue, f.kind),
            f.retryable,
            f.discarded
        );
    }
    println!("\nSchedules        last fired                  next");
    for s in &report.schedules {
        let last = s
            .last_fired_at
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "never".into());
        let next = s
            .next_fire_at
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "-".into());
        println!("  {:<14} {:<27} {}", s.name, last, next);
    }
    println!(
        "\nWebhooks (24 h)  provider / outcome          events  last received        lag avg / max"
    );
    if report.webhooks.is_empty() {
        println!("  none received");
    }
    for w in &report.webhooks {
        let last = w
            .last_received_at
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "-".into());
        let seconds = |ms: Option<f64>| ms.map_or("-".into(), |ms| format!("{:.1} s", ms / 1000.0));
        println!(
            "  {:<42} {:>6}  {:<19}  {} / {}",
            format!("{} / {}", w.provider, w.outcome),
            w.events,
            last,
            seconds(w.avg_lag_ms),
            seconds(w.max_lag_ms)
        );
    }
    println!("\nFlags");
    for f in &report.flags {
        println!(
            "  {:<14} {:<4} ({})",
            f.name,
            if f.enabled { "on" } else { "off" },
            f.source
        );
    }
    Exit::Ok
}
