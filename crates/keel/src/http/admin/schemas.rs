//! The admin API's bodies. The answers built here are what the handlers serialize; the schemas
//! of types from outside the HTTP layer (jobs, queue statistics, flags, schedules, audit rows)
//! mirror the type named above each, and `tests/it/openapi.rs` checks real answers against them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::flags::FlagView;
use crate::ops::queues::{QueueStat, ScheduleRun};

// `jobs::JobState`.
/// `scheduled` → `available` → `running` → `completed`; a failed attempt goes to `retryable` or,
/// out of attempts, `discarded`; `cancelled` by a drain.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum JobState {
    Scheduled,
    Available,
    Running,
    Retryable,
    Completed,
    Discarded,
    Cancelled,
}

// `http::admin::jobs::job_json`.
#[derive(ToSchema)]
pub struct Job {
    pub id: i64,
    pub queue: String,
    pub kind: String,
    pub state: JobState,
    #[schema(minimum = 0)]
    pub attempt: i32,
    #[schema(minimum = 1)]
    pub max_attempts: i32,
    #[schema(required = true)]
    pub unique_key: Option<String>,
    /// Not run before this time.
    pub run_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub finished_at: Option<DateTime<Utc>>,
    /// The last failed attempt's error.
    #[schema(required = true)]
    pub last_error: Option<String>,
}

// `jobs::JobSpec` (unknown fields are refused).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Which handler runs the job.
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,100}$")]
    pub kind: String,
    /// Any JSON (at most 256 KiB), decoded into the handler's type; `{}` when absent or null.
    #[serde(default)]
    pub args: Value,
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,100}$", default = "default")]
    pub queue: Option<String>,
    /// Lower runs first.
    #[schema(minimum = -32768, maximum = 32767, default = 0)]
    pub priority: Option<i16>,
    /// Not run before this time; now when absent.
    pub run_at: Option<DateTime<Utc>>,
    #[schema(minimum = 1, maximum = 1000, default = 20)]
    pub max_attempts: Option<i32>,
    #[schema(minimum = 1, maximum = 86400, default = 300)]
    pub timeout_seconds: Option<i64>,
    /// While a job with this key is live, enqueueing another returns it.
    #[schema(min_length = 1, max_length = 500)]
    pub unique_key: Option<String>,
    /// After 5 consecutive failures under one key, its jobs wait 60 s.
    #[schema(min_length = 1, max_length = 500)]
    pub breaker_key: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Enqueued {
    pub id: i64,
    /// True when a live job held the unique key: `id` is that job.
    pub deduplicated: bool,
}

// `ops::queues::QueueStat`.
/// Jobs per state in one queue, and whether processing is paused.
#[derive(ToSchema)]
pub struct QueueStats {
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

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueList {
    /// Every queue that is configured or holds jobs, by name.
    #[schema(value_type = BTreeMap<String, QueueStats>)]
    pub queues: BTreeMap<String, QueueStat>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueuePaused {
    pub queue: String,
    pub paused: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueDrained {
    pub queue: String,
    /// How many waiting jobs were cancelled.
    pub cancelled: u64,
}

// `flags::FlagView`.
#[derive(ToSchema)]
pub struct Flag {
    /// `scheduler`, `enqueue`, `workers` or `queue:NAME`.
    pub name: String,
    pub enabled: bool,
    /// `default` when never set, else who set it last.
    pub source: String,
    #[schema(required = true)]
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FlagList {
    #[schema(value_type = Vec<Flag>)]
    pub flags: Vec<FlagView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FlagSet {
    pub name: String,
    pub enabled: bool,
}

// `ops::queues::ScheduleRun`.
#[derive(ToSchema)]
pub struct Schedule {
    pub name: String,
    /// The cron expression, in UTC.
    pub cron: String,
    /// The kind of job each firing enqueues.
    pub kind: String,
    #[schema(required = true)]
    pub last_fired_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub next_fire_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleList {
    #[schema(value_type = Vec<Schedule>)]
    pub schedules: Vec<ScheduleRun>,
}

// `store::audit::AuditRow`.
#[derive(ToSchema)]
pub struct AuditRow {
    pub at: DateTime<Utc>,
    /// `admin-token`, `user:ID`, `cli`, `scheduler-trigger` …
    pub actor: String,
    /// e.g. `flag.set`, `job.enqueue`.
    pub action: String,
    /// e.g. `flag:workers`.
    #[schema(required = true)]
    pub target: Option<String>,
    /// What the action changed (JSON).
    pub metadata: Value,
}
