//! `keel bench http-jobs`: what running a job over HTTP costs, against the configured database.
//!
//! A receiver in this process (127.0.0.1, a free port) answers every POST with 204. Each round
//! enqueues N no-op jobs of an in-process Rust handler and has a worker of concurrency C drain
//! them, then does the same with N jobs of an HTTP kind delivered (signed) to the receiver; the
//! figure is jobs/s from the worker's start until the last completion is written, and the ratio
//! of the two in the same round. Jobs go to queues of their own, deleted afterwards.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::Router;
use serde::Serialize;
use tokio::sync::watch;

use keel::crypto::standard_webhooks::WebhookSecret;
use keel::jobs::{HttpKind, JobSpec, JobState, Registry, Worker, WorkerConfig};
use keel::services::Services;
use keel::store::jobs::BreakerPolicy;
use keel::store::Engine;

use super::queue::BenchError;

const RUST_KIND: &str = "bench.rust_noop";
const HTTP_KIND: &str = "bench.http_noop";

#[derive(Debug, Clone, Copy)]
pub struct HttpJobsBench {
    pub jobs: usize,
    pub concurrency: usize,
    pub rounds: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Round {
    pub rust_jobs_per_s: f64,
    pub http_jobs_per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct HttpJobsResult {
    pub engine: Engine,
    pub jobs: usize,
    pub concurrency: usize,
    pub rounds: Vec<Round>,
    /// Medians over the rounds.
    pub rust_jobs_per_s: f64,
    pub http_jobs_per_s: f64,
    /// HTTP jobs/s over Rust jobs/s (the median of each round's ratio).
    pub http_over_rust: f64,
    /// POSTs the receiver answered.
    pub deliveries: usize,
}

pub async fn run(services: &Services, opts: HttpJobsBench) -> Result<HttpJobsResult, BenchError> {
    let received = Arc::new(AtomicUsize::new(0));
    let url = receiver(received.clone()).await?;
    let secret = WebhookSecret::generate()
        .and_then(|raw| WebhookSecret::parse(&raw).ok())
        .ok_or_else(|| BenchError::Stalled("cannot generate a signing secret".into()))?;
    let mut registry = Registry::default();
    registry.register_fn(RUST_KIND, |_, _| async { Ok(()) });
    let kinds = [(
        HTTP_KIND.to_string(),
        HttpKind {
            url,
            timeout: Duration::from_secs(10),
            queue: None,
            max_attempts: None,
        },
    )]
    .into();
    keel::jobs::http_kind::register(&mut registry, &kinds, &[secret], &services.clock);

    let suffix = &uuid::Uuid::now_v7().simple().to_string()[20..];
    let queue = format!("bench-http-{suffix}");
    let mut rounds = Vec::new();
    let mut outcome = Ok(());
    for _ in 0..opts.rounds {
        let rust = drain(services, &registry, &queue, RUST_KIND, opts).await;
        let http = match &rust {
            Ok(_) => drain(services, &registry, &queue, HTTP_KIND, opts).await,
            Err(_) => Ok(0.0),
        };
        match (rust, http) {
            (Ok(rust_jobs_per_s), Ok(http_jobs_per_s)) => rounds.push(Round {
                rust_jobs_per_s,
                http_jobs_per_s,
            }),
            (Err(e), _) | (_, Err(e)) => {
                outcome = Err(e);
                break;
            }
        }
    }
    if let Err(e) = services.db.delete_queue(&queue).await {
        tracing::warn!(error = %e, %queue, "cannot delete the benchmark's jobs");
    }
    outcome?;
    let median = |f: &dyn Fn(&Round) -> f64| {
        let mut values: Vec<f64> = rounds.iter().map(f).collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(0.0)
    };
    Ok(HttpJobsResult {
        engine: services.db.engine(),
        jobs: opts.jobs,
        concurrency: opts.concurrency,
        rust_jobs_per_s: median(&|r| r.rust_jobs_per_s),
        http_jobs_per_s: median(&|r| r.http_jobs_per_s),
        http_over_rust: median(&|r| r.http_jobs_per_s / r.rust_jobs_per_s.max(f64::MIN_POSITIVE)),
        deliveries: received.load(Ordering::Relaxed),
        rounds,
    })
}

/// Serves 204 to every request on 127.0.0.1 and a free port; returns its URL.
async fn receiver(received: Arc<AtomicUsize>) -> Result<String, BenchError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| BenchError::Stalled(format!("cannot bind the receiver: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| BenchError::Stalled(format!("the receiver has no address: {e}")))?;
    let router = Router::new().fallback(move || {
        received.fetch_add(1, Ordering::Relaxed);
        async { StatusCode::NO_CONTENT }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(format!("http://{addr}/jobs"))
}

/// Enqueues `opts.jobs` jobs of `kind`, drains them with a worker of `opts.concurrency`, and
/// returns jobs/s from the worker's start until the last completion is written.
async fn drain(
    services: &Services,
    registry: &Registry,
    queue: &str,
    kind: &str,
    opts: HttpJobsBench,
) -> Result<f64, BenchError> {
    services.db.delete_queue(queue).await?;
    let specs = vec![JobSpec::new(kind, serde_json::json!({})).queue(queue); opts.jobs];
    services.queue.enqueue_many(&specs).await?;
    let config = WorkerConfig {
        queues: vec![(queue.to_string(), opts.concurrency)],
        lease: services.settings.jobs.lease,
        poll_interval: Duration::from_millis(100),
        listen: !services.settings.jobs.poll_only,
        breaker: BreakerPolicy {
            threshold: 5,
            cooldown: Duration::from_secs(60),
        },
        grace: Duration::from_secs(5),
        rescue_interval: Duration::from_secs(5),
    };
    let worker = Worker::on_pools(
        &services.db,
        &services.settings.database,
        services.clock.clone(),
        services.flags.clone(),
        registry.clone(),
        config,
    )?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let handle = worker.spawn(stop_rx);
    let finished = completed(services, queue, opts.jobs).await;
    let elapsed = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    let _ = handle.await;
    finished?;
    Ok(opts.jobs as f64 / elapsed)
}

/// Until `jobs` jobs of `queue` are written completed; a discarded or retried one stops the run.
async fn completed(services: &Services, queue: &str, jobs: usize) -> Result<(), BenchError> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let counts = services.db.job_counts().await?;
        let states = counts.get(queue);
        let count = |state| states.and_then(|s| s.get(&state)).copied().unwrap_or(0);
        if count(JobState::Completed) as usize >= jobs {
            return Ok(());
        }
        let failed = count(JobState::Retryable) + count(JobState::Discarded);
        if failed > 0 {
            return Err(BenchError::Stalled(format!(
                "{failed} jobs failed; the benchmark measures successful runs only"
            )));
        }
        if Instant::now() > deadline {
            return Err(BenchError::Stalled(format!(
                "only {} of {jobs} jobs completed within 10 minutes",
                count(JobState::Completed)
            )));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
