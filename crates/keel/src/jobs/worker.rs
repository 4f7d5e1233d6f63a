//! The worker: one runner per queue, plus the process-wide duties — lease heartbeats, rescue of
//! jobs whose process died, and (Postgres) `LISTEN` for new jobs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::runner;
use super::{JobSettings, QueueSettings, Registry};
use crate::clock::Clock;
use crate::flags::Flags;
use crate::store::jobs::BreakerPolicy;
use crate::store::Db;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Queue name and how many of its jobs run at once in this process.
    pub queues: Vec<(String, usize)>,
    pub lease: Duration,
    pub poll_interval: Duration,
    /// Postgres: wake on `NOTIFY` (off for PgBouncer in transaction mode).
    pub listen: bool,
    pub breaker: BreakerPolicy,
    /// How long running jobs get to finish once the worker is stopped; the rest are released.
    pub grace: Duration,
    pub rescue_interval: Duration,
}

impl WorkerConfig {
    /// Connections a worker with this configuration uses at most: one per claim lane, plus the
    /// listener, heartbeats and rescue.
    pub fn connections(&self, db: &Db) -> u32 {
        let lanes: usize = self.queues.iter().map(|(_, c)| lanes(*c, db).len()).sum();
        lanes as u32 + 4
    }

    /// The worker `jobs` and the `keel.toml` queue overrides describe; running jobs get `grace`
    /// to finish once it is stopped.
    pub fn from_settings(
        jobs: &JobSettings,
        queue_overrides: &BTreeMap<String, QueueSettings>,
        grace: Duration,
    ) -> Self {
        let default = jobs.concurrency as usize;
        let mut queues: Vec<(String, usize)> = vec![(super::DEFAULT_QUEUE.to_string(), default)];
        for (name, queue) in queue_overrides {
            let concurrency = queue.concurrency.map(|c| c as usize).unwrap_or(default);
            match queues.iter_mut().find(|(n, _)| n == name) {
                Some(entry) => entry.1 = concurrency,
                None => queues.push((name.clone(), concurrency)),
            }
        }
        Self {
            queues,
            lease: jobs.lease,
            poll_interval: Duration::from_secs(1),
            listen: !jobs.poll_only,
            breaker: BreakerPolicy {
                threshold: 5,
                cooldown: Duration::from_secs(60),
            },
            grace,
            rescue_interval: Duration::from_secs(5),
        }
    }
}

/// What every runner of one worker shares.
pub(crate) struct Shared {
    pub db: Db,
    pub clock: Clock,
    pub flags: Flags,
    pub registry: Arc<Registry>,
    pub config: WorkerConfig,
    pub id: String,
}

pub struct Worker {
    shared: Arc<Shared>,
}

impl Worker {
    pub fn new(
        db: Db,
        clock: Clock,
        flags: Flags,
        registry: Registry,
        config: WorkerConfig,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                db,
                clock,
                flags,
                registry: Arc::new(registry),
                config,
                id: format!("worker-{}", uuid::Uuid::now_v7().simple()),
            }),
        }
    }

    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Starts every runner; the handle completes once `stop` turned true and every runner has
    /// finished or released its jobs.
    pub fn spawn(self, stop: watch::Receiver<bool>) -> JoinHandle<()> {
        let shared = self.shared;
        tokio::spawn(async move {
            if let Err(e) = shared
                .db
                .renew_worker_lease(&shared.id, lease_until(&shared))
                .await
            {
                tracing::warn!(error = %e, "cannot record the worker lease yet; the heartbeat retries");
            }
            let mut duties = Vec::new();
            duties.push(tokio::spawn(heartbeat(shared.clone())));
            duties.push(tokio::spawn(rescue(shared.clone(), stop.clone())));
            if shared.config.listen {
                if let Db::Postgres(pool) = &shared.db {
                    duties.push(tokio::spawn(listen(pool.clone(), stop.clone())));
                }
            }
            let mut runners = Vec::new();
            for (queue, concurrency) in &shared.config.queues {
                for slots in lanes(*concurrency, &shared.db) {
                    runners.push(tokio::spawn(runner::run(
                        shared.clone(),
                        queue.clone(),
                        slots,
                        stop.clone(),
                    )));
                }
            }
            tracing::info!(worker = %shared.id, queues = shared.config.queues.len(), "worker started");
            for runner in runners {
                if let Err(e) = runner.await {
                    tracing::error!(error = %e, "queue runner failed");
                }
            }
            for duty in duties {
                duty.abort();
            }
            if let Err(e) = shared.db.end_worker_lease(&shared.id).await {
                tracing::warn!(error = %e, "cannot remove the worker lease; it will expire");
            }
            tracing::info!(worker = %shared.id, "worker stopped");
        })
    }
}

/// Splits a queue's concurrency into lanes, each with its own claim in flight. On Postgres a
/// queue of 16 or more slots gets two lanes, so claiming never waits on one round trip; SQLite
/// has one writer, so one lane.
fn lanes(concurrency: usize, db: &Db) -> Vec<usize> {
    let concurrency = concurrency.max(1);
    match db {
        Db::Postgres(_) if concurrency >= 16 => {
            vec![concurrency - concurrency / 2, concurrency / 2]
        }
        _ => vec![concurrency],
    }
}

fn lease_until(shared: &Shared) -> chrono::DateTime<chrono::Utc> {
    shared.clock.now() + chrono::Duration::from_std(shared.config.lease).unwrap_or_default()
}

/// Renews this worker's lease every third of its length, until the runners have stopped.
async fn heartbeat(shared: Arc<Shared>) {
    let every = (shared.config.lease / 3).max(Duration::from_millis(500));
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = shared
            .db
            .renew_worker_lease(&shared.id, lease_until(&shared))
            .await
        {
            tracing::warn!(error = %e, "lease heartbeat failed");
        }
    }
}

/// Every few seconds, returns the jobs of workers whose lease expired; once a minute (and at
/// start) also sweeps for running jobs that no live lease holds. Never this worker's own: it is
/// running, whatever its clock says.
async fn rescue(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    const SWEEP_EVERY: u32 = 12;
    let mut round = 0u32;
    loop {
        let now = shared.clock.now();
        let result = if round % SWEEP_EVERY == 0 {
            shared.db.rescue_jobs(now, Some(&shared.id)).await
        } else {
            shared.db.rescue_dead_workers(now, Some(&shared.id)).await
        };
        match result {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                jobs = n,
                "rescued jobs whose worker stopped renewing its lease"
            ),
            Err(e) => tracing::warn!(error = %e, "rescue of expired leases failed"),
        }
        round = round.wrapping_add(1);
        tokio::select! {
            () = tokio::time::sleep(shared.config.rescue_interval) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn listen(pool: sqlx::PgPool, mut stop: watch::Receiver<bool>) {
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN for new jobs; polling meanwhile");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        if let Err(e) = listener.listen(crate::store::postgres_channel()).await {
            tracing::warn!(error = %e, "cannot LISTEN for new jobs; polling meanwhile");
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        }
        loop {
            tokio::select! {
                received = listener.recv() => match received {
                    Ok(notification) => super::wake::queue(notification.payload()),
                    Err(e) => {
                        tracing::warn!(error = %e, "job notifications interrupted; reconnecting");
                        break;
                    }
                },
                _ = stop.changed() => return,
            }
        }
    }
}
