//! Enqueueing, and the operations operators run on queues and jobs (each audited in the same
//! transaction as the change).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::spec::SpecProblem;
use super::{JobSpec, KindDefaults};
use crate::clock::Clock;
use crate::flags::{self, FlagError, Flags};
use crate::store::audit::AuditEntry;
use crate::store::jobs::{Enqueued, JobAction, JobFilter, JobRow, NewJob, QueueCounts};
use crate::store::{Db, StoreError, Tx};

/// Enqueue batches are written in transactions of at most this many jobs.
pub const BATCH: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("enqueueing is switched off (flag enqueue)")]
    EnqueueDisabled,
    #[error("invalid job: {}", .0.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<SpecProblem>),
    #[error("no job {0}")]
    NotFound(i64),
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How deep the queues are, as health checks and metrics read it.
#[derive(Debug, Clone, Default)]
pub struct Depth {
    pub counts: QueueCounts,
    pub oldest_due: BTreeMap<String, DateTime<Utc>>,
}

/// The job system's front door.
#[derive(Debug, Clone)]
pub struct Queue {
    db: Db,
    clock: Clock,
    flags: Flags,
    defaults: KindDefaults,
}

impl Queue {
    pub fn new(db: Db, clock: Clock, flags: Flags) -> Self {
        Self {
            db,
            clock,
            flags,
            defaults: KindDefaults::default(),
        }
    }

    /// Fills in what declared kinds set (an HTTP kind's queue, attempts and timeout).
    pub fn with_defaults(mut self, defaults: KindDefaults) -> Self {
        self.defaults = defaults;
        self
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn flags(&self) -> &Flags {
        &self.flags
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Jobs matching `filter`, newest first.
    pub async fn list(&self, filter: &JobFilter) -> Result<Vec<JobRow>, StoreError> {
        self.db.list_jobs(filter).await
    }

    /// Jobs per queue and state, and the `run_at` of each queue's oldest due job.
    pub async fn depth(&self) -> Result<Depth, StoreError> {
        Ok(Depth {
            counts: self.db.job_counts().await?,
            oldest_due: self.db.oldest_waiting(self.clock.now()).await?,
        })
    }

    /// Jobs discarded in the last `window`.
    pub async fn discarded_within(&self, window: chrono::Duration) -> Result<i64, StoreError> {
        self.db.discarded_since(self.clock.now() - window).await
    }

    async fn check(&self, specs: &[JobSpec]) -> Result<Vec<NewJob>, JobError> {
        if !self.flags.enabled(flags::ENQUEUE).await {
            return Err(JobError::EnqueueDisabled);
        }
        specs
            .iter()
            .map(|s| {
                self.defaults
                    .apply(s.clone())
                    .validate()
                    .map_err(JobError::Invalid)
            })
            .collect()
    }

    pub async fn enqueue(&self, spec: JobSpec) -> Result<Enqueued, JobError> {
        let jobs = self.check(std::slice::from_ref(&spec)).await?;
        let out = self.db.insert_jobs(self.clock.now(), &jobs).await?;
        enqueued(&jobs);
        super::wake::queues(jobs.iter().map(|j| j.queue.as_str()));
        out.into_iter()
            .next()
            .ok_or(JobError::Store(StoreError::Database(
                sqlx::Error::RowNotFound,
            )))
    }

    /// Enqueues many jobs, in transactions of [`BATCH`].
    pub async fn enqueue_many(&self, specs: &[JobSpec]) -> Result<Vec<Enqueued>, JobError> {
        let jobs = self.check(specs).await?;
        let mut out = Vec::with_capacity(jobs.len());
        for chunk in jobs.chunks(BATCH) {
            out.extend(self.db.insert_jobs(self.clock.now(), chunk).await?);
        }
        enqueued(&jobs);
        super::wake::queues(jobs.iter().map(|j| j.queue.as_str()));
        Ok(out)
    }

    /// Enqueues inside the caller's transaction: the job exists only if it commits.
    pub async fn enqueue_in(&self, tx: &mut Tx, spec: JobSpec) -> Result<Enqueued, JobError> {
        let jobs = self.check(std::slice::from_ref(&spec)).await?;
        let out = tx.insert_jobs(self.clock.now(), &jobs).await?;
        out.into_iter()
            .next()
            .ok_or(JobError::Store(StoreError::Database(
                sqlx::Error::RowNotFound,
            )))
    }

    /// An operator's enqueue: like [`Queue::enqueue_many`], plus an audit row.
    pub async fn enqueue_audited(
        &self,
        specs: &[JobSpec],
        actor: &str,
    ) -> Result<Vec<Enqueued>, JobError> {
        let jobs = self.check(specs).await?;
        let mut out = Vec::with_capacity(jobs.len());
        for chunk in jobs.chunks(BATCH) {
            let now = self.clock.now();
            let mut tx = self.db.begin().await?;
            let inserted = tx.insert_jobs(now, chunk).await?;
            let entry = AuditEntry::new(
                actor,
                "job.enqueue",
                Some(format!("kind:{}", chunk[0].kind)),
                serde_json::json!({
                    "count": chunk.len(),
                    "queue": chunk[0].queue,
                    "first_id": inserted.first().map(|e| e.id),
                }),
            );
            tx.audit(&entry, now).await?;
            tx.commit().await?;
            out.extend(inserted);
        }
        enqueued(&jobs);
        super::wake::queues(jobs.iter().map(|j| j.queue.as_str()));
        Ok(out)
    }

    /// Jobs matching `filter` in the states it names that a retry applies to (retryable,
    /// discarded or cancelled; all three when it names none) run again now. Returns their ids.
    pub async fn retry(&self, filter: &JobFilter, actor: &str) -> Result<Vec<i64>, JobError> {
        self.act(JobAction::Retry, filter, actor).await
    }

    /// Waiting jobs matching `filter` (of the states it names, if any) are discarded. Returns
    /// their ids.
    pub async fn discard(&self, filter: &JobFilter, actor: &str) -> Result<Vec<i64>, JobError> {
        self.act(JobAction::Discard, filter, actor).await
    }

    /// `action` on the jobs `filter` selects, with one audit row, in one transaction.
    pub async fn act(
        &self,
        action: JobAction,
        filter: &JobFilter,
        actor: &str,
    ) -> Result<Vec<i64>, JobError> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let ids = act_in(&mut tx, action, filter, now).await?;
        if !ids.is_empty() {
            tx.audit(&audit(actor, action, filter, &ids), now).await?;
        }
        tx.commit().await?;
        if action == JobAction::Retry {
            super::wake::all();
        }
        Ok(ids)
    }

    /// `action` on each of the jobs `ids` whose state allows it, with one audit row, in one
    /// transaction. Returns the ids it changed.
    pub async fn act_on_selection(
        &self,
        action: JobAction,
        ids: &[i64],
        actor: &str,
    ) -> Result<Vec<i64>, JobError> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let mut changed = Vec::new();
        for &id in ids {
            let one = JobFilter {
                id: Some(id),
                limit: 1,
                ..JobFilter::default()
            };
            changed.extend(act_in(&mut tx, action, &one, now).await?);
        }
        if !changed.is_empty() {
            let entry = AuditEntry::new(
                actor,
                &format!("job.{}", action.as_str()),
                None,
                serde_json::json!({
                    "selected": ids.len(),
                    "ids": changed,
                    "count": changed.len(),
                }),
            );
            tx.audit(&entry, now).await?;
        }
        tx.commit().await?;
        if action == JobAction::Retry {
            super::wake::all();
        }
        Ok(changed)
    }

    /// How many jobs `filter` selects among the states `action` applies to, counting no
    /// further than `cap`.
    pub async fn count_for(
        &self,
        action: JobAction,
        filter: &JobFilter,
        cap: i64,
    ) -> Result<i64, StoreError> {
        let states = action.states_within(&filter.states);
        if states.is_empty() {
            return Ok(0);
        }
        let filter = JobFilter {
            states,
            ..filter.clone()
        };
        self.db.count_jobs(&filter, cap).await
    }

    /// How many jobs `filter` selects (in any state, unless it names some), up to `cap`.
    pub async fn count(&self, filter: &JobFilter, cap: i64) -> Result<i64, StoreError> {
        self.db.count_jobs(filter, cap).await
    }

    /// Cancels every waiting job of `queue`. Returns how many.
    pub async fn drain(&self, queue: &str, actor: &str) -> Result<u64, JobError> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let n = tx.drain_queue(queue, now).await?;
        let entry = AuditEntry::new(
            actor,
            "queue.drain",
            Some(format!("queue:{queue}")),
            serde_json::json!({ "cancelled": n }),
        );
        tx.audit(&entry, now).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Pauses (or resumes) processing of one queue: the `queue:NAME` flag.
    pub async fn set_paused(&self, queue: &str, paused: bool, actor: &str) -> Result<(), JobError> {
        self.flags
            .set(&flags::queue_flag(queue), !paused, actor)
            .await
            .map_err(JobError::from)
    }
}

/// Counts enqueued jobs by queue and kind (a transaction's jobs count once it commits: see
/// `enqueue_in`, whose caller commits).
fn enqueued(jobs: &[NewJob]) {
    let metrics = crate::metrics::global();
    for job in jobs {
        metrics.jobs_enqueued.inc(&[&job.queue, &job.kind]);
    }
}

async fn act_in(
    tx: &mut Tx,
    action: JobAction,
    filter: &JobFilter,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    match action {
        JobAction::Retry => tx.retry_jobs(filter, now).await,
        JobAction::Discard => tx.discard_jobs(filter, now).await,
    }
}

fn audit(actor: &str, action: JobAction, filter: &JobFilter, ids: &[i64]) -> AuditEntry {
    let target = match (filter.id, &filter.queue, &filter.kind) {
        (Some(id), _, _) => Some(format!("job:{id}")),
        (None, Some(q), _) => Some(format!("queue:{q}")),
        (None, None, Some(k)) => Some(format!("kind:{k}")),
        _ => None,
    };
    let mut metadata = serde_json::json!({ "ids": ids, "count": ids.len() });
    if filter.id.is_none() {
        let states: Vec<&str> = action
            .states_within(&filter.states)
            .iter()
            .map(|s| s.as_str())
            .collect();
        metadata["filter"] = serde_json::json!({
            "queue": filter.queue,
            "kind": filter.kind,
            "states": states,
        });
    }
    AuditEntry::new(actor, &format!("job.{}", action.as_str()), target, metadata)
}
