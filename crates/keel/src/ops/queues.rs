//! Queue statistics and the operations report, shared by `keel queue stats`, `keel report` and
//! the admin API.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::flags::{self, FlagView};
use crate::jobs::JobState;
use crate::services::Services;
use crate::store::StoreError;

/// Jobs per state in one queue, and whether processing is paused.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[schema(as = QueueStats)]
pub struct QueueStat {
    #[schema(minimum = 0)]
    pub scheduled: i64,
    #[schema(minimum = 0)]
    pub available: i64,
    #[schema(minimum = 0)]
    pub running: i64,
    #[schema(minimum = 0)]
    pub retryable: i64,
    #[schema(minimum = 0)]
    pub completed: i64,
    #[schema(minimum = 0)]
    pub discarded: i64,
    #[schema(minimum = 0)]
    pub cancelled: i64,
    /// Whether the queue's flag is off.
    pub paused: bool,
}

impl QueueStat {
    fn add(&mut self, state: JobState, n: i64) {
        match state {
            JobState::Scheduled => self.scheduled += n,
            JobState::Available => self.available += n,
            JobState::Running => self.running += n,
            JobState::Retryable => self.retryable += n,
            JobState::Completed => self.completed += n,
            JobState::Discarded => self.discarded += n,
            JobState::Cancelled => self.cancelled += n,
        }
    }
}

/// Every queue that is configured or holds jobs.
pub async fn stats(services: &Services) -> Result<BTreeMap<String, QueueStat>, StoreError> {
    let counts = services.db.job_counts().await?;
    let mut out: BTreeMap<String, QueueStat> = BTreeMap::new();
    out.entry(crate::jobs::DEFAULT_QUEUE.to_string())
        .or_default();
    for name in services.settings.file.queues.keys() {
        out.entry(name.clone()).or_default();
    }
    for flag in services.db.flags().await? {
        if let Some(name) = flag.name.strip_prefix("queue:") {
            out.entry(name.to_string()).or_default();
        }
    }
    for (queue, states) in counts {
        let stat = out.entry(queue).or_default();
        for (state, n) in states {
            stat.add(state, n);
        }
    }
    for (name, stat) in out.iter_mut() {
        stat.paused = !services.flags.enabled(&flags::queue_flag(name)).await;
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize)]
pub struct FailedCount {
    pub queue: String,
    pub kind: String,
    pub retryable: i64,
    pub discarded: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Schedule)]
pub struct ScheduleRun {
    pub name: String,
    /// The cron expression, read in `timezone`.
    pub cron: String,
    /// The IANA time zone of the expression (`UTC` unless the schedule declares one).
    pub timezone: String,
    /// The kind of job each firing enqueues.
    pub kind: String,
    #[schema(required = true)]
    pub last_fired_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub next_fire_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueBacklog {
    /// Jobs due now or later that no worker holds: scheduled, available, retryable.
    pub backlog: i64,
    pub running: i64,
    /// Seconds since the oldest due, unclaimed job became due.
    pub oldest_waiting_s: Option<f64>,
    pub paused: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub generated_at: DateTime<Utc>,
    pub queues: BTreeMap<String, QueueBacklog>,
    pub failed: Vec<FailedCount>,
    pub schedules: Vec<ScheduleRun>,
    /// Billing webhooks received in the last 24 hours, per provider and outcome.
    pub webhooks: Vec<crate::store::billing::WebhookStat>,
    pub flags: Vec<FlagView>,
}

/// The one-screen operations report.
pub async fn report(services: &Services) -> Result<Report, StoreError> {
    let now = services.clock.now();
    let stats = stats(services).await?;
    let oldest = services.db.oldest_waiting(now).await?;
    let queues = stats
        .into_iter()
        .map(|(name, s)| {
            let oldest_waiting_s = oldest
                .get(&name)
                .map(|at| ((now - *at).num_milliseconds().max(0) as f64) / 1000.0);
            let backlog = QueueBacklog {
                backlog: s.scheduled + s.available + s.retryable,
                running: s.running,
                oldest_waiting_s,
                paused: s.paused,
            };
            (name, backlog)
        })
        .collect();
    let mut failed: BTreeMap<(String, String), FailedCount> = BTreeMap::new();
    for (queue, kind, state, n) in services.db.failed_counts().await? {
        let entry = failed
            .entry((queue.clone(), kind.clone()))
            .or_insert(FailedCount {
                queue,
                kind,
                retryable: 0,
                discarded: 0,
            });
        match state {
            JobState::Retryable => entry.retryable += n,
            _ => entry.discarded += n,
        }
    }
    let ticks = services.db.last_ticks().await?;
    let schedules = services
        .scheduler
        .schedules()
        .iter()
        .map(|s| ScheduleRun {
            name: s.name.clone(),
            cron: s.expr.clone(),
            timezone: s.timezone.to_string(),
            kind: s.kind.clone(),
            last_fired_at: ticks.get(&s.name).copied(),
            next_fire_at: s.cron.next_after(now),
        })
        .collect();
    Ok(Report {
        generated_at: now,
        queues,
        failed: failed.into_values().collect(),
        schedules,
        webhooks: services
            .db
            .webhook_stats(now - chrono::Duration::hours(24))
            .await?,
        flags: services.flags.list().await?,
    })
}
