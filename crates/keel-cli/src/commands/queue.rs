use chrono::{DateTime, Utc};
use clap::Subcommand;
use keel::jobs::{ArgMatch, JobFilter, JobSpec, JobState};
use keel::ops::queues;
use keel::Settings;
use serde_json::{json, Value};

use crate::context::{self, failed, ACTOR};
use crate::exit::{Exit, Output};
use crate::Build;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: QueueCommand,
}

#[derive(Debug, clap::Args)]
struct Filter {
    #[arg(long)]
    queue: Option<String>,
    #[arg(long)]
    kind: Option<String>,
    #[arg(long)]
    id: Option<i64>,
    /// Only jobs whose arguments hold this top-level key with this value: `user_id=u_42`.
    #[arg(long, value_name = "KEY=VALUE", value_parser = arg_match)]
    arg: Option<ArgMatch>,
    #[arg(long, default_value_t = 100)]
    limit: i64,
    /// With retry or discard: act on every matching job even with no --id, --queue or --kind.
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Subcommand)]
enum QueueCommand {
    /// Jobs per state in every queue.
    Stats,
    /// Failed jobs (retryable and discarded), newest first.
    Failed(Filter),
    /// Run failed, discarded or cancelled jobs again now.
    Retry(Filter),
    /// Discard waiting jobs (scheduled, available, retryable).
    Discard(Filter),
    /// Stop processing a queue (enqueues still land).
    Pause { queue: String },
    /// Resume processing a queue.
    Resume { queue: String },
    /// Cancel every waiting job of a queue.
    Drain { queue: String },
    /// Enqueue one job (or N alike).
    Enqueue(EnqueueArgs),
    /// Jobs, newest first.
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
struct EnqueueArgs {
    kind: String,
    #[arg(long, default_value = "{}")]
    args: String,
    #[arg(long)]
    queue: Option<String>,
    #[arg(long)]
    unique_key: Option<String>,
    #[arg(long)]
    breaker_key: Option<String>,
    #[arg(long)]
    max_attempts: Option<i32>,
    #[arg(long)]
    run_at: Option<String>,
    #[arg(long, default_value_t = 1)]
    count: usize,
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    #[arg(long)]
    state: Option<String>,
    #[arg(long)]
    kind: Option<String>,
    #[arg(long)]
    queue: Option<String>,
    /// Only jobs whose arguments hold this top-level key with this value: `user_id=u_42`.
    #[arg(long, value_name = "KEY=VALUE", value_parser = arg_match)]
    arg: Option<ArgMatch>,
    #[arg(long, default_value_t = 50)]
    limit: i64,
}

fn arg_match(text: &str) -> Result<ArgMatch, String> {
    ArgMatch::parse(text).map_err(|e| e.to_string())
}

impl Filter {
    /// Retry and discard act on many jobs at once: they need a filter, or `--all` said aloud.
    fn checked(self) -> Result<Self, Exit> {
        let named = self.id.is_some() || self.queue.is_some() || self.kind.is_some();
        if !named && self.arg.is_none() && !self.all {
            eprintln!("error: name the jobs with --id, --queue, --kind or --arg (or act on every job with --all)");
            return Err(Exit::Usage);
        }
        Ok(self)
    }

    fn into_filter(self, states: Vec<JobState>) -> JobFilter {
        JobFilter {
            id: self.id,
            queue: self.queue,
            kind: self.kind,
            states,
            arg: self.arg,
            limit: self.limit.clamp(1, 100_000),
        }
    }
}

pub async fn run(args: Args, out: Output, build: Build<'_>) -> Exit {
    let services = match context::services() {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let result = match args.command {
        QueueCommand::Stats => stats(&services, out).await,
        QueueCommand::Failed(f) => {
            list(
                &services,
                f.into_filter(vec![JobState::Retryable, JobState::Discarded]),
                out,
            )
            .await
        }
        QueueCommand::Retry(f) => match f.checked() {
            Ok(f) => ids(
                services.queue.retry(&f.into_filter(vec![]), ACTOR).await,
                "retried",
                out,
            ),
            Err(exit) => Err(exit),
        },
        QueueCommand::Discard(f) => match f.checked() {
            Ok(f) => ids(
                services.queue.discard(&f.into_filter(vec![]), ACTOR).await,
                "discarded",
                out,
            ),
            Err(exit) => Err(exit),
        },
        QueueCommand::Pause { queue } => pause(&services, &queue, true, out).await,
        QueueCommand::Resume { queue } => pause(&services, &queue, false, out).await,
        QueueCommand::Drain { queue } => match services.queue.drain(&queue, ACTOR).await {
            Ok(n) => {
                print(
                    out,
                    json!({"queue": queue, "cancelled": n}),
                    &format!("cancelled {n} waiting jobs of {queue}"),
                );
                Ok(())
            }
            Err(e) => Err(failed(e)),
        },
        QueueCommand::Enqueue(a) => {
            let declared = build(Settings::clone(&services.settings)).job_kinds();
            enqueue(&services, a, &declared, out).await
        }
        QueueCommand::List(a) => {
            let states = match a.state.as_deref().map(JobState::parse) {
                None => vec![],
                Some(Some(s)) => vec![s],
                Some(None) => {
                    eprintln!("error: --state must be one of scheduled, available, running, retryable, completed, discarded, cancelled");
                    return Exit::Usage;
                }
            };
            let filter = JobFilter {
                id: None,
                queue: a.queue,
                kind: a.kind,
                states,
                arg: a.arg,
                limit: a.limit.clamp(1, 100_000),
            };
            list(&services, filter, out).await
        }
    };
    match result {
        Ok(()) => Exit::Ok,
        Err(exit) => exit,
    }
}

fn print(out: Output, value: Value, text: &str) {
    if out.json {
        out.print_json(&value);
    } else {
        println!("{text}");
    }
}

async fn stats(services: &keel::services::Services, out: Output) -> Result<(), Exit> {
    let stats = queues::stats(services).await.map_err(failed)?;
    if out.json {
        out.print_json(&json!({ "queues": stats }));
        return Ok(());
    }
    println!(
        "{:<20} {:>9} {:>9} {:>8} {:>9} {:>10} {:>9} {:>9}  paused",
        "queue",
        "scheduled",
        "available",
        "running",
        "retryable",
        "completed",
        "discarded",
        "cancelled"
    );
    for (name, s) in stats {
        println!(
            "{:<20} {:>9} {:>9} {:>8} {:>9} {:>10} {:>9} {:>9}  {}",
            name,
            s.scheduled,
            s.available,
            s.running,
            s.retryable,
            s.completed,
            s.discarded,
            s.cancelled,
            if s.paused { "yes" } else { "no" }
        );
    }
    Ok(())
}

async fn list(
    services: &keel::services::Services,
    filter: JobFilter,
    out: Output,
) -> Result<(), Exit> {
    let jobs = services.db.list_jobs(&filter).await.map_err(failed)?;
    if out.json {
        let rows: Vec<Value> = jobs
            .iter()
            .map(|j| {
                json!({
                    "id": j.id, "queue": j.queue, "kind": j.kind, "state": j.state, "attempt": j.attempt,
                    "max_attempts": j.max_attempts, "unique_key": j.unique_key, "run_at": j.run_at,
                    "created_at": j.created_at, "finished_at": j.finished_at, "last_error": j.last_error,
                })
            })
            .collect();
        out.print_json(&Value::Array(rows));
        return Ok(());
    }
    if jobs.is_empty() {
        println!("no jobs");
    }
    for j in jobs {
        println!(
            "{:>8} {:<12} {:<24} {:<10} {}/{} run_at {}{}",
            j.id,
            j.queue,
            j.kind,
            j.state.as_str(),
            j.attempt,
            j.max_attempts,
            j.run_at.format("%Y-%m-%d %H:%M:%S"),
            j.last_error
                .map(|e| format!("  error: {e}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn ids(
    result: Result<Vec<i64>, keel::jobs::JobError>,
    verb: &str,
    out: Output,
) -> Result<(), Exit> {
    let ids = result.map_err(failed)?;
    print(
        out,
        json!({ verb: ids }),
        &format!(
            "{verb} {} jobs{}",
            ids.len(),
            if ids.is_empty() {
                String::new()
            } else {
                format!(": {ids:?}")
            }
        ),
    );
    Ok(())
}

async fn pause(
    services: &keel::services::Services,
    queue: &str,
    paused: bool,
    out: Output,
) -> Result<(), Exit> {
    services
        .queue
        .set_paused(queue, paused, ACTOR)
        .await
        .map_err(|e| match e {
            keel::jobs::JobError::Flag(keel::flags::FlagError::Unknown(_)) => {
                eprintln!("error: {e}");
                Exit::Usage
            }
            e => failed(e),
        })?;
    let word = if paused { "paused" } else { "resumed" };
    print(
        out,
        json!({ "queue": queue, "paused": paused }),
        &format!("{word} {queue} (every process within a few seconds)"),
    );
    Ok(())
}

async fn enqueue(
    services: &keel::services::Services,
    a: EnqueueArgs,
    declared: &std::collections::BTreeSet<String>,
    out: Output,
) -> Result<(), Exit> {
    let usage = |message: String| {
        eprintln!("error: {message}");
        Exit::Usage
    };
    let args: Value =
        serde_json::from_str(&a.args).map_err(|e| usage(format!("--args is not JSON: {e}")))?;
    let run_at = match &a.run_at {
        Some(text) => Some(
            DateTime::parse_from_rfc3339(text)
                .map_err(|e| usage(format!("--run-at is not RFC 3339: {e}")))?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    if a.count == 0 || a.count > 10_000_000 {
        return Err(usage("--count must be from 1 to 10000000".into()));
    }
    let spec = JobSpec {
        kind: a.kind,
        args,
        queue: a.queue,
        run_at,
        max_attempts: a.max_attempts,
        unique_key: a.unique_key,
        breaker_key: a.breaker_key,
        ..JobSpec::default()
    };
    if !declared.contains(&spec.kind) {
        return Err(usage(keel::jobs::undeclared(&spec.kind)));
    }
    if let Err(problems) = spec.validate() {
        let text: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect();
        return Err(usage(text.join("; ")));
    }
    let specs = vec![spec; a.count];
    let enqueued = services
        .queue
        .enqueue_audited(&specs, ACTOR)
        .await
        .map_err(failed)?;
    if out.json {
        out.print_json(
            &json!({ "ids": enqueued.iter().map(|e| e.id).collect::<Vec<_>>(),
            "deduplicated": enqueued.iter().filter(|e| e.deduplicated).count() }),
        );
    } else if enqueued.len() <= 20 {
        for e in &enqueued {
            println!(
                "{}{}",
                e.id,
                if e.deduplicated {
                    " (existing job with this unique key)"
                } else {
                    ""
                }
            );
        }
    } else {
        println!(
            "enqueued {} jobs, ids {}..{}",
            enqueued.len(),
            enqueued[0].id,
            enqueued[enqueued.len() - 1].id
        );
    }
    Ok(())
}
