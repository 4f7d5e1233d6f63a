//! How a worker is set up: its queues and their concurrency, lease, polling and breaker, and
//! what its runners share.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

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
        self.claim_lanes(db) + Self::OTHER_CONNECTIONS
    }

    /// The claim lanes of every queue: each holds one connection of the claims pool.
    pub fn claim_lanes(&self, db: &Db) -> u32 {
        self.queues
            .iter()
            .map(|(_, c)| lanes(*c, db).len() as u32)
            .sum()
    }

    /// The worker's connections besides its claim lanes: the listener, heartbeats, rescue and the
    /// jobs' own statements.
    pub const OTHER_CONNECTIONS: u32 = 4;

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
    /// Heartbeats, rescue and the jobs' own statements.
    pub db: Db,
    /// The runners' claims and outcomes.
    pub claims: Db,
    pub clock: Clock,
    pub flags: Flags,
    pub registry: Arc<Registry>,
    pub config: WorkerConfig,
    pub id: String,
}

/// Splits a queue's concurrency into lanes, each with its own claim in flight. On Postgres a
/// queue of 16 or more slots gets two lanes, so claiming never waits on one round trip; SQLite
/// has one writer, so one lane.
pub(crate) fn lanes(concurrency: usize, db: &Db) -> Vec<usize> {
    let concurrency = concurrency.max(1);
    match db {
        Db::Postgres(_) if concurrency >= 16 => {
            vec![concurrency - concurrency / 2, concurrency / 2]
        }
        _ => vec![concurrency],
    }
}
