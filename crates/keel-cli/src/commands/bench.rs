use crate::bench::http::HttpBench;
use crate::bench::http_jobs::HttpJobsBench;
use crate::bench::queue::{self, QueueBench};
use crate::bench::webhooks::{self, WebhookBench};
use clap::Subcommand;
use keel::store::migrate::{Migrator, State};

use crate::context::{self, failed};
use crate::exit::{Exit, Output};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Job lifecycle against the configured database: insert, process, insert-to-start latency.
    Queue {
        #[arg(long, default_value_t = 20_000)]
        jobs: usize,
        #[arg(long, default_value_t = 50)]
        concurrency: usize,
        /// Jobs per second offered in the latency phase.
        #[arg(long, default_value_t = 200)]
        rate: u32,
        /// Length of the latency phase.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Also trace where the latency phase's time goes: insert and commit, notification,
        /// claim, start (Postgres).
        #[arg(long)]
        breakdown: bool,
    },
    /// Signed RevenueCat webhooks through the HTTP API into the configured database, beside
    /// single-job inserts measured in the same run.
    Webhooks {
        #[arg(long, default_value_t = 5_000)]
        events: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// HTTP job kinds against in-process Rust jobs, in the same run on the configured database:
    /// no-op jobs POSTed (signed) to a receiver in this process that answers 204.
    HttpJobs {
        #[arg(long, default_value_t = 5_000)]
        jobs: usize,
        #[arg(long, default_value_t = 50)]
        concurrency: usize,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Requests per second through the full edge stack: a trivial route against GET /v1/me with
    /// a valid RS256 token, on an in-process server (SQLite in a temporary directory).
    Http {
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Seconds per scenario per round.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// A minimal app for the gateway benchmark (bench/gateway.sh): answers every request with 200
    /// and a small JSON body on 127.0.0.1, until stopped.
    Upstream {
        #[arg(long, default_value_t = 9090)]
        port: u16,
    },
    /// Presigned upload URLs issued per second (POST /v1/me/uploads) against GET /v1/me in the
    /// same run, on an in-process server (SQLite and the filesystem backend in a temporary
    /// directory, or --s3 s3://BUCKET with the AWS_* variables).
    Storage {
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Seconds per scenario per round.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Presign for this bucket instead of the filesystem backend.
        #[arg(long)]
        s3: Option<String>,
    },
    /// Serves GET /v1/me with RS256 tokens for an external load generator (see
    /// bench/http_peers.sh): prints one JSON line with the URL, a valid token and the public key,
    /// then serves until SIGINT or SIGTERM.
    HttpServe,
}

pub async fn run(args: Args, out: Output) -> Exit {
    match args.command {
        BenchCommand::Queue {
            jobs,
            concurrency,
            rate,
            seconds,
            breakdown,
        } => {
            queue(
                QueueBench {
                    jobs,
                    concurrency,
                    rate,
                    seconds,
                    breakdown,
                },
                out,
            )
            .await
        }
        BenchCommand::Http {
            connections,
            seconds,
            rounds,
        } => http(connections, seconds, rounds, out).await,
        BenchCommand::Storage {
            connections,
            seconds,
            rounds,
            s3,
        } => storage(connections, seconds, rounds, s3, out).await,
        BenchCommand::Webhooks {
            events,
            concurrency,
        } => webhooks(events, concurrency, out).await,
        BenchCommand::Upstream { port } => match crate::bench::upstream::serve(port).await {
            Ok(()) => Exit::Ok,
            Err(e) => failed(e),
        },
        BenchCommand::HttpServe => http_serve().await,
        BenchCommand::HttpJobs {
            jobs,
            concurrency,
            rounds,
        } => {
            http_jobs(
                HttpJobsBench {
                    jobs,
                    concurrency,
                    rounds,
                },
                out,
            )
            .await
        }
    }
}

async fn webhooks(events: usize, concurrency: usize, out: Output) -> Exit {
    if !(1..=1_000_000).contains(&events) || !(1..=1000).contains(&concurrency) {
        eprintln!("error: --events 1 to 1000000, --concurrency 1 to 1000");
        return Exit::Usage;
    }
    let services = match context::services() {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    if let Err(exit) = migrated(&services).await {
        return exit;
    }
    let opts = WebhookBench {
        events,
        concurrency,
    };
    let result = match webhooks::run(&services.settings, opts).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    if out.json {
        match serde_json::to_value(&result) {
            Ok(v) => println!("{v}"),
            Err(e) => return failed(e),
        }
        return Exit::Ok;
    }
    println!(
        "keel webhook benchmark on {:?}: {} signed RevenueCat events, {} connections",
        result.engine, result.events, result.concurrency
    );
    println!(
        "  webhooks     {:>9.0} /s  p50 {:.2} ms  p99 {:.2} ms  errors {}",
        result.webhooks_per_s, result.webhook_p50_ms, result.webhook_p99_ms, result.errors
    );
    println!(
        "  job inserts  {:>9.0} /s (one per transaction)",
        result.job_inserts_per_s
    );
    println!(
        "  row commits  {:>9.0} /s (one-row transactions)",
        result.row_commits_per_s
    );
    println!(
        "  webhooks reach {:.0}% of the row commits' rate",
        result.webhooks_over_row_commits * 100.0
    );
    if result.errors > 0 {
        return Exit::Failed;
    }
    Exit::Ok
}

async fn http_jobs(opts: HttpJobsBench, out: Output) -> Exit {
    if !(1..=1_000_000).contains(&opts.jobs)
        || !(1..=1000).contains(&opts.concurrency)
        || !(1..=50).contains(&opts.rounds)
    {
        eprintln!("error: --jobs 1 to 1000000, --concurrency 1 to 1000, --rounds 1 to 50");
        return Exit::Usage;
    }
    let services = match context::services() {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    if let Err(exit) = migrated(&services).await {
        return exit;
    }
    let result = match crate::bench::http_jobs::run(&services, opts).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    if out.json {
        match serde_json::to_value(&result) {
            Ok(v) => println!("{v}"),
            Err(e) => return failed(e),
        }
        return Exit::Ok;
    }
    println!(
        "keel HTTP job benchmark on {:?}: {} jobs per kind, concurrency {}, {} rounds (medians)",
        result.engine,
        result.jobs,
        result.concurrency,
        result.rounds.len()
    );
    println!("  Rust no-op jobs  {:>9.0} jobs/s", result.rust_jobs_per_s);
    println!(
        "  HTTP no-op jobs  {:>9.0} jobs/s ({} deliveries answered 204)",
        result.http_jobs_per_s, result.deliveries
    );
    println!(
        "  HTTP jobs run at {:.2}x the rate of in-process jobs",
        result.http_over_rust
    );
    Exit::Ok
}

/// Refuses to measure a database with pending migrations.
async fn migrated(services: &keel::services::Services) -> Result<(), Exit> {
    let database = &services.settings.database;
    let (url, pooler) = database.migration_target();
    let migrator = Migrator::new(url, database.migration_timeout)
        .map_err(failed)?
        .with_pooler(pooler);
    match migrator.status().await {
        Ok(status) if status.iter().all(|s| s.state == State::Applied) => Ok(()),
        Ok(_) => {
            eprintln!("error: migrations are pending; run `keel migrate up` first");
            Err(Exit::Failed)
        }
        Err(e) => Err(failed(e)),
    }
}

async fn http_serve() -> Exit {
    let ready = |serving: &crate::bench::http::serve::Serving| {
        use std::io::Write;
        match serde_json::to_string(serving) {
            Ok(line) => {
                let mut stdout = std::io::stdout().lock();
                let _ = writeln!(stdout, "{line}");
                let _ = stdout.flush();
            }
            Err(e) => eprintln!("error: {e}"),
        }
    };
    match crate::bench::http::serve::run(ready, keel::runtime::shutdown_signal()).await {
        Ok(()) => Exit::Ok,
        Err(e) => failed(e),
    }
}

async fn http(connections: usize, seconds: f64, rounds: usize, out: Output) -> Exit {
    if !(1..=1000).contains(&connections)
        || !(0.1..=600.0).contains(&seconds)
        || !(1..=50).contains(&rounds)
    {
        eprintln!("error: --connections 1 to 1000, --seconds 0.1 to 600, --rounds 1 to 50");
        return Exit::Usage;
    }
    let opts = HttpBench {
        connections,
        seconds,
        rounds,
    };
    let result = match crate::bench::http::run(opts).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    if out.json {
        match serde_json::to_value(&result) {
            Ok(v) => println!("{v}"),
            Err(e) => return failed(e),
        }
        return Exit::Ok;
    }
    println!(
        "keel HTTP benchmark: {} connections, {} rounds of {} s per scenario",
        result.connections, result.rounds, result.seconds_per_round
    );
    for s in &result.scenarios {
        println!(
            "  {:<22} {:>9.0} req/s (median)  p50 {:.2} ms  p99 {:.2} ms  errors {}",
            s.name, s.requests_per_s, s.p50_ms, s.p99_ms, s.errors
        );
    }
    println!(
        "  the edge stack keeps {:.0}% of the bare route's throughput; /v1/me keeps {:.0}% of the trivial route's",
        result.edge_over_bare * 100.0,
        result.me_over_trivial * 100.0
    );
    Exit::Ok
}

async fn queue(opts: QueueBench, out: Output) -> Exit {
    let services = match context::services() {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let QueueBench {
        jobs,
        concurrency,
        rate,
        seconds,
        breakdown,
    } = opts;
    if jobs == 0 || concurrency == 0 || rate == 0 || jobs > 5_000_000 || concurrency > 10_000 {
        eprintln!(
            "error: --jobs (1 to 5000000), --concurrency (1 to 10000) and --rate must be positive"
        );
        return Exit::Usage;
    }
    if breakdown && services.db.engine() != keel::store::Engine::Postgres {
        eprintln!("error: --breakdown needs a Postgres DATABASE_URL");
        return Exit::Usage;
    }
    if let Err(exit) = migrated(&services).await {
        return exit;
    }
    let result = match queue::run(
        &services,
        QueueBench {
            jobs,
            concurrency,
            rate,
            seconds,
            breakdown,
        },
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    if out.json {
        match serde_json::to_value(&result) {
            Ok(v) => println!("{v}"),
            Err(e) => return failed(e),
        }
    } else {
        println!(
            "keel queue benchmark on {:?}: {} jobs, concurrency {}",
            result.engine, result.jobs, result.concurrency
        );
        println!("  insert     {:>10.0} jobs/s", result.insert_jobs_per_s);
        println!("  processed  {:>10.0} jobs/s", result.processed_jobs_per_s);
        println!(
            "  insert-to-start at {} jobs/s ({} jobs): p50 {:.2} ms, p99 {:.2} ms",
            result.latency_rate, result.latency_jobs, result.latency_p50_ms, result.latency_p99_ms
        );
        for stage in result.breakdown.iter().flatten() {
            println!(
                "    {:<44} p50 {:>7.3} ms  p99 {:>7.3} ms",
                stage.stage, stage.p50_ms, stage.p99_ms
            );
        }
    }
    Exit::Ok
}

async fn storage(
    connections: usize,
    seconds: f64,
    rounds: usize,
    s3: Option<String>,
    out: Output,
) -> Exit {
    if !(1..=1000).contains(&connections)
        || !(0.1..=600.0).contains(&seconds)
        || !(1..=50).contains(&rounds)
        || s3.as_deref().is_some_and(|url| !url.starts_with("s3://"))
    {
        eprintln!(
            "error: --connections 1 to 1000, --seconds 0.1 to 600, --rounds 1 to 50, --s3 s3://BUCKET"
        );
        return Exit::Usage;
    }
    let opts = HttpBench {
        connections,
        seconds,
        rounds,
    };
    let result = match crate::bench::http::storage::run(opts, s3).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    if out.json {
        match serde_json::to_value(&result) {
            Ok(v) => println!("{v}"),
            Err(e) => return failed(e),
        }
        return Exit::Ok;
    }
    println!(
        "keel storage benchmark ({}): {} connections, {} rounds of {} s per scenario",
        result.backend, result.connections, result.rounds, result.seconds_per_round
    );
    for s in &result.scenarios {
        println!(
            "  {:<22} {:>9.0} req/s (median)  p50 {:.2} ms  p99 {:.2} ms  errors {}",
            s.name, s.requests_per_s, s.p50_ms, s.p99_ms, s.errors
        );
    }
    println!(
        "  upload URLs are issued at {:.0}% of GET /v1/me's rate",
        result.uploads_over_me * 100.0
    );
    Exit::Ok
}
