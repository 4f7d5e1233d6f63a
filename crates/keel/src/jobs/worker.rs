//! The worker: one runner per queue, plus the process-wide duties — lease heartbeats, rescue of
//! jobs whose process died, and (Postgres) `LISTEN` for new jobs.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::runner;
use super::worker_config::{lanes, Shared, WorkerConfig};
use super::Registry;
use crate::clock::Clock;
use crate::flags::Flags;
use crate::store::{DatabaseSettings, Db, StoreError};

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
        Self::with_claims(db.clone(), db, clock, flags, registry, config)
    }

    /// A worker on pools of its own beside `db`: on Postgres one for its runners' claims and
    /// outcomes (a connection per claim lane, see [`Db::claims_pool`]) and one for the rest (see
    /// [`Db::worker_pool`]); on SQLite, `db` itself.
    pub fn on_pools(
        db: &Db,
        database: &DatabaseSettings,
        clock: Clock,
        flags: Flags,
        registry: Registry,
        config: WorkerConfig,
    ) -> Result<Self, StoreError> {
        let claims = db.claims_pool(database, config.claim_lanes(db))?;
        let work = db.worker_pool(database, WorkerConfig::OTHER_CONNECTIONS)?;
        Ok(Self::with_claims(
            claims, work, clock, flags, registry, config,
        ))
    }

    fn with_claims(
        claims: Db,
        db: Db,
        clock: Clock,
        flags: Flags,
        registry: Registry,
        config: WorkerConfig,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                db,
                claims,
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
                match &shared.db {
                    Db::Postgres(db) if !db.is_pooled() => {
                        duties.push(tokio::spawn(listen((**db).clone(), stop.clone())));
                    }
                    _ => {}
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
