//! One queue's loop in one worker: write finished outcomes and claim new jobs in a single round
//! trip, run them on the runtime, repeat. A slot is reused only after its outcome is written.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::{JoinError, JoinSet};

use super::handler::{JobContext, JobFailure};
use super::worker_config::Shared;
use crate::flags;
use crate::store::jobs::{ClaimCursor, ClaimSpec, Claimed, Outcome, Report};
use crate::telemetry::sentry::scoped::{self, WorkHub};

type Attempt = Result<Result<(), JobFailure>, tokio::time::error::Elapsed>;

/// What the runner remembers of a job while it runs.
struct Running {
    id: i64,
    kind: String,
    attempt: i32,
    max_attempts: i32,
    timeout: Duration,
    breaker_key: Option<String>,
    started: Instant,
    /// Where the attempt's errors are reported (with its tags), when errors are reported.
    hub: WorkHub,
}

struct Runner {
    shared: Arc<Shared>,
    queue: String,
    concurrency: usize,
    tasks: JoinSet<Attempt>,
    running: HashMap<tokio::task::Id, Running>,
    reports: Vec<Report>,
    /// Where the last claim ended, while claims keep coming back full.
    cursor: Option<ClaimCursor>,
    /// When the runner last claimed without a cursor.
    full_claim_at: Instant,
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    queue: String,
    concurrency: usize,
    mut stop: watch::Receiver<bool>,
) {
    let wake = super::wake::waker(&queue);
    let pause_flag = flags::queue_flag(&queue);
    let mut runner = Runner {
        shared,
        queue,
        concurrency,
        tasks: JoinSet::new(),
        running: HashMap::new(),
        reports: Vec::new(),
        cursor: None,
        full_claim_at: Instant::now(),
    };
    let mut poll_due = true;
    let mut last_full = false;
    let mut last_poll = Instant::now();
    loop {
        runner.collect_finished();
        // Stopped, or the owner dropped the stop sender: either way, wind down.
        if *stop.borrow() || stop.has_changed().is_err() {
            break;
        }
        let open = runner.shared.flags.enabled(flags::WORKERS).await
            && runner.shared.flags.enabled(&pause_flag).await;
        let free = if open {
            runner.concurrency - runner.tasks.len()
        } else {
            0
        };
        let claim = free > 0 && (poll_due || last_full || !runner.reports.is_empty());
        if claim || !runner.reports.is_empty() {
            let limit = if claim { free } else { 0 };
            match runner.write_and_claim(limit).await {
                Ok(taken) => {
                    last_full = limit > 0 && taken == limit;
                    if last_full {
                        // There may be more: another runner of this queue joins in.
                        wake.notify_one();
                    }
                    if limit > 0 {
                        poll_due = false;
                        last_poll = Instant::now();
                    }
                }
                Err(()) => {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
            }
            if last_full && runner.tasks.len() < runner.concurrency {
                continue;
            }
        }
        // With no free slot (or the queue switched off) there is nothing to poll for: a finished
        // job wakes the loop, and the flags are re-read once per interval.
        // Only a runner with a free slot listens for wake-ups, so one always reaches a runner
        // that can claim.
        let listening = open && runner.tasks.len() < runner.concurrency;
        let poll_interval = runner.shared.config.poll_interval;
        let poll_wait = if free == 0 {
            poll_interval
        } else {
            poll_interval.saturating_sub(last_poll.elapsed())
        };
        tokio::select! {
            Some(done) = runner.tasks.join_next_with_id(), if !runner.tasks.is_empty() => {
                runner.record(done);
                // Let jobs that finish at nearly the same moment join this batch.
                tokio::task::yield_now().await;
            }
            () = wake.notified(), if listening => poll_due = true,
            () = tokio::time::sleep(poll_wait) => poll_due = true,
            _ = stop.changed() => {}
        }
    }
    runner.shut_down().await;
}

impl Runner {
    fn collect_finished(&mut self) {
        while let Some(done) = self.tasks.try_join_next_with_id() {
            self.record(done);
        }
    }

    /// Writes pending outcomes and claims up to `limit` jobs; returns how many were claimed.
    async fn write_and_claim(&mut self, limit: usize) -> Result<usize, ()> {
        let now = self.shared.clock.now();
        let after = self
            .cursor
            .filter(|_| limit > 0 && self.full_claim_at.elapsed() < ClaimCursor::MAX_AGE);
        let spec = ClaimSpec {
            queue: &self.queue,
            worker: &self.shared.id,
            now,
            lease_until: now
                + chrono::Duration::from_std(self.shared.config.lease).unwrap_or_default(),
            limit: limit as i64,
            after,
        };
        match self
            .shared
            .claims
            .report_and_claim(&self.reports, &spec, self.shared.config.breaker)
            .await
        {
            Ok(claimed) => {
                self.forget_reported();
                let taken = claimed.len();
                if limit > 0 {
                    if after.is_none() {
                        self.full_claim_at = Instant::now();
                    }
                    self.cursor =
                        claimed
                            .last()
                            .filter(|_| taken == limit)
                            .map(|last| ClaimCursor {
                                priority: last.priority,
                                run_at: last.run_at,
                                id: last.id,
                            });
                }
                for job in claimed {
                    self.start(job);
                }
                Ok(taken)
            }
            Err(e) => {
                tracing::warn!(queue = %self.queue, error = %e, "cannot write outcomes or claim jobs; retrying");
                Err(())
            }
        }
    }

    fn forget_reported(&mut self) {
        self.reports.clear();
    }

    fn start(&mut self, job: Claimed) {
        let ctx = JobContext {
            id: job.id,
            queue: job.queue,
            kind: job.kind.clone(),
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            enqueued_at: job.created_at,
            db: self.shared.db.clone(),
        };
        let span = tracing::info_span!(
            "job",
            job_id = job.id,
            kind = %job.kind,
            attempt = job.attempt,
            queue = %ctx.queue,
        );
        let hub = scoped::job_hub(job.id, &job.kind, &ctx.queue, job.attempt);
        let future = self.shared.registry.start(ctx, job.args);
        let timeout = job.timeout;
        let attempt = tracing::Instrument::instrument(
            async move { tokio::time::timeout(timeout, future).await },
            span,
        );
        // A panic in the job is reported by the panic hook through the job's hub.
        let handle = scoped::spawn(&mut self.tasks, &hub, attempt);
        self.running.insert(
            handle.id(),
            Running {
                id: job.id,
                kind: job.kind,
                attempt: job.attempt,
                max_attempts: job.max_attempts,
                timeout,
                breaker_key: job.breaker_key,
                started: Instant::now(),
                hub,
            },
        );
    }

    fn record(&mut self, done: Result<(tokio::task::Id, Attempt), JoinError>) {
        let (task, result) = match done {
            Ok((task, attempt)) => (task, Ok(attempt)),
            Err(e) => (e.id(), Err(e)),
        };
        let Some(job) = self.running.remove(&task) else {
            return;
        };
        let panicked = matches!(&result, Err(e) if e.is_panic());
        let failure = match result {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(failure))) => Some(failure),
            Ok(Err(_elapsed)) => Some(JobFailure::retry(format!(
                "timed out after {} s",
                job.timeout.as_secs_f64()
            ))),
            Err(e) if e.is_panic() => {
                Some(JobFailure::retry(format!("panicked: {}", panic_message(e))))
            }
            Err(_) => Some(JobFailure::retry("cancelled")),
        };
        let elapsed = job.started.elapsed();
        let elapsed_ms = elapsed.as_millis() as u64;
        let metrics = crate::metrics::global();
        let labels = [self.queue.as_str(), job.kind.as_str()];
        metrics.job_duration.observe(&labels, elapsed.as_secs_f64());
        let outcome = match failure {
            None => {
                tracing::debug!(job = job.id, kind = %job.kind, elapsed_ms, "job completed");
                metrics.jobs_completed.inc(&labels);
                Outcome::Completed
            }
            Some(failure) if failure.retryable && job.attempt < job.max_attempts => {
                let delay = super::backoff::delay(job.id, job.attempt)
                    .max(failure.retry_after.unwrap_or_default());
                metrics.jobs_failed.inc(&labels);
                tracing::warn!(job = job.id, kind = %job.kind, attempt = job.attempt, error = %failure.message, retry_in_s = delay.as_secs(), "job failed; will retry");
                Outcome::Retry {
                    run_at: self.shared.clock.now()
                        + chrono::Duration::from_std(delay).unwrap_or_default(),
                    error: failure.message,
                }
            }
            Some(failure) => {
                metrics.jobs_discarded.inc(&labels);
                // A panic was reported by the panic hook, with the stack that panicked.
                if !panicked {
                    scoped::capture_job_failure(&job.hub, &job.kind, &failure.message);
                }
                tracing::error!(job = job.id, kind = %job.kind, attempt = job.attempt, error = %failure.message, report = "exception", "job failed for the last time; discarded");
                Outcome::Discard {
                    error: failure.message,
                }
            }
        };
        self.reports.push(Report {
            id: job.id,
            outcome,
            breaker_key: job.breaker_key,
        });
    }

    /// Lets running jobs finish within the grace period, releases the rest, writes outcomes.
    async fn shut_down(mut self) {
        let deadline = tokio::time::Instant::now() + self.shared.config.grace;
        while !self.tasks.is_empty() {
            tokio::select! {
                Some(done) = self.tasks.join_next_with_id() => self.record(done),
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        let unfinished: Vec<i64> = self.running.values().map(|r| r.id).collect();
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        for attempt in 0..5 {
            if self.reports.is_empty() || self.write_and_claim(0).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
        }
        if !unfinished.is_empty() {
            match self
                .shared
                .db
                .release_jobs(&self.shared.id, &unfinished)
                .await
            {
                Ok(n) => {
                    tracing::warn!(queue = %self.queue, jobs = n, "released jobs still running at the end of the grace period")
                }
                Err(e) => {
                    tracing::error!(queue = %self.queue, error = %e, "cannot release jobs; their leases will expire and they will be rescued")
                }
            }
        }
    }
}

fn panic_message(e: JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into()),
        Err(_) => "unknown".into(),
    }
}
