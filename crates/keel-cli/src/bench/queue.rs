//! `keel bench queue`: the job lifecycle against the configured database.
//!
//! 1. insert N no-op jobs in batches of [`keel::jobs::BATCH`] (insert jobs/s);
//! 2. a worker with concurrency C drains them (processed jobs/s, from the worker's start until
//!    the last completion is written);
//! 3. with the worker idle, jobs are inserted one at a time at R per second for S seconds, the way
//!    another process would (no in-process wake-up: Postgres workers learn of them by `NOTIFY`);
//!    each records the time from its insert to its start (p50, p99).
//!
//! Jobs go to a queue of their own, deleted afterwards. On Postgres the jobs table is vacuumed
//! first, so each run starts from the state autovacuum keeps rather than from the dead rows of the
//! run before it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use keel::jobs::{JobError, JobSpec, JobState, Registry, Worker, WorkerConfig};
use keel::services::Services;
use keel::store::jobs::BreakerPolicy;
use keel::store::{Engine, StoreError};

use super::queue_trace::{self, Stage, Trace};
use super::stats::percentile;

#[derive(Debug, Clone, Copy)]
pub struct QueueBench {
    pub jobs: usize,
    pub concurrency: usize,
    pub rate: u32,
    pub seconds: u64,
    /// Also trace where the latency phase's time goes (Postgres; see `queue_trace.rs`).
    pub breakdown: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueBenchResult {
    pub system: &'static str,
    pub engine: Engine,
    pub jobs: usize,
    pub concurrency: usize,
    pub insert_jobs_per_s: f64,
    pub processed_jobs_per_s: f64,
    /// CPU per processed job, this process against the local Postgres (absent where it cannot
    /// be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_cpu: Option<super::cpu::CpuPerUnit>,
    pub latency_rate: u32,
    pub latency_jobs: usize,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    /// With `--breakdown`: the latency phase's stages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<Vec<Stage>>,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Jobs(#[from] JobError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Stalled(String),
}

const NOOP: &str = "bench.noop";
const LATENCY: &str = "bench.latency";

pub async fn run(services: &Services, opts: QueueBench) -> Result<QueueBenchResult, BenchError> {
    let queue = format!("bench-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let done = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let trace = Arc::new(Trace::default());
    let registry = registry(
        done.clone(),
        latencies.clone(),
        trace.clone(),
        services.clock.clone(),
    );
    let result = measure(services, &queue, registry, done, latencies, trace, opts).await;
    if let Err(e) = services.db.delete_queue(&queue).await {
        tracing::warn!(error = %e, %queue, "cannot delete the benchmark's jobs");
    }
    result
}

fn registry(
    done: Arc<AtomicUsize>,
    latencies: Arc<Mutex<Vec<f64>>>,
    trace: Arc<Trace>,
    clock: keel::clock::Clock,
) -> Registry {
    let mut registry = Registry::default();
    registry.register_fn(NOOP, move |_, _| {
        done.fetch_add(1, Ordering::Relaxed);
        async { Ok(()) }
    });
    registry.register_fn(LATENCY, move |ctx, args| {
        let started_us = clock.now().timestamp_micros();
        if let Ok(mut started) = trace.started.lock() {
            started.insert(ctx.id, started_us);
        }
        let inserted_us = args
            .get("t_us")
            .and_then(|v| v.as_i64())
            .unwrap_or(started_us);
        if let Ok(mut l) = latencies.lock() {
            l.push((started_us - inserted_us) as f64 / 1000.0);
        }
        async { Ok(()) }
    });
    registry
}

async fn measure(
    services: &Services,
    queue: &str,
    registry: Registry,
    done: Arc<AtomicUsize>,
    latencies: Arc<Mutex<Vec<f64>>>,
    trace: Arc<Trace>,
    opts: QueueBench,
) -> Result<QueueBenchResult, BenchError> {
    services.db.vacuum_jobs().await?;
    let specs = vec![JobSpec::new(NOOP, serde_json::json!({})).queue(queue); opts.jobs];
    let started = Instant::now();
    services.queue.enqueue_many(&specs).await?;
    let insert_s = started.elapsed().as_secs_f64();

    let config = WorkerConfig {
        queues: vec![(queue.to_string(), opts.concurrency)],
        lease: services.settings.jobs.lease,
        poll_interval: Duration::from_secs(1),
        listen: !services.settings.jobs.poll_only,
        breaker: BreakerPolicy {
            threshold: 5,
            cooldown: Duration::from_secs(60),
        },
        grace: Duration::from_secs(5),
        rescue_interval: Duration::from_secs(5),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let worker = Worker::on_pools(
        &services.db,
        &services.settings.database,
        services.clock.clone(),
        services.flags.clone(),
        registry,
        config,
    )?;
    let cpu_before = super::cpu::CpuSample::now();
    let started = Instant::now();
    let handle = worker.spawn(stop_rx);
    wait_completed(services, queue, opts.jobs, &done).await?;
    let process_s = started.elapsed().as_secs_f64();
    let process_cpu = cpu_before
        .zip(super::cpu::CpuSample::now())
        .map(|(before, after)| before.per_unit(after, opts.jobs));

    let listener = if opts.breakdown {
        Some(
            queue_trace::listen(services, queue, trace.clone())
                .await
                .map_err(BenchError::Stalled)?,
        )
    } else {
        None
    };
    let latency = offered_load(services, queue, opts, &latencies, &trace).await;
    let _ = stop_tx.send(true);
    let _ = handle.await;
    let mut latency = latency?;
    let breakdown = match listener {
        Some(listener) => {
            listener.abort();
            Some(
                queue_trace::stages(services, queue, &trace)
                    .await
                    .map_err(BenchError::Stalled)?,
            )
        }
        None => None,
    };
    latency.sort_by(f64::total_cmp);
    Ok(QueueBenchResult {
        system: "keel",
        engine: services.db.engine(),
        jobs: opts.jobs,
        concurrency: opts.concurrency,
        insert_jobs_per_s: opts.jobs as f64 / insert_s,
        processed_jobs_per_s: opts.jobs as f64 / process_s,
        process_cpu,
        latency_rate: opts.rate,
        latency_jobs: latency.len(),
        latency_p50_ms: percentile(&latency, 0.50),
        latency_p99_ms: percentile(&latency, 0.99),
        breakdown,
    })
}

/// Until every job of `queue` is written completed.
async fn wait_completed(
    services: &Services,
    queue: &str,
    jobs: usize,
    done: &AtomicUsize,
) -> Result<(), BenchError> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if done.load(Ordering::Relaxed) >= jobs {
            let counts = services.db.job_counts().await?;
            let completed = counts
                .get(queue)
                .and_then(|states| states.get(&JobState::Completed))
                .copied()
                .unwrap_or(0);
            if completed as usize >= jobs {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(BenchError::Stalled(format!(
                "only {} of {jobs} jobs ran within 10 minutes",
                done.load(Ordering::Relaxed)
            )));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn offered_load(
    services: &Services,
    queue: &str,
    opts: QueueBench,
    latencies: &Mutex<Vec<f64>>,
    trace: &Trace,
) -> Result<Vec<f64>, BenchError> {
    let total = (opts.rate as u64 * opts.seconds) as usize;
    let interval = Duration::from_secs_f64(1.0 / f64::from(opts.rate.max(1)));
    let start = tokio::time::Instant::now();
    for i in 0..total {
        tokio::time::sleep_until(start + interval * i as u32).await;
        let t0 = services.clock.now().timestamp_micros();
        let args = serde_json::json!({ "t_us": t0 });
        let job = JobSpec::new(LATENCY, args)
            .queue(queue)
            .validate()
            .map_err(JobError::Invalid)?;
        let inserted = services
            .db
            .insert_jobs(services.clock.now(), &[job])
            .await?;
        let t1 = services.clock.now().timestamp_micros();
        if let (Some(job), Ok(mut traced)) = (inserted.first(), trace.inserted.lock()) {
            traced.insert(job.id, (t0, t1));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = latencies.lock().map(|l| l.len()).unwrap_or(0);
        if seen >= total {
            break;
        }
        if Instant::now() > deadline {
            return Err(BenchError::Stalled(format!(
                "only {seen} of {total} latency jobs started"
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(latencies.lock().map(|l| l.clone()).unwrap_or_default())
}
