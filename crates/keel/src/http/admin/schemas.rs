//! The admin API's bodies. The answers built here are what the handlers serialize; types the
//! handlers answer as they are (job states, queue statistics, flags, schedules, audit rows, a
//! job spec, an enqueue result) derive their schemas where they are defined. [`Job`] mirrors
//! `http::job_body::job_json`, which answers a subset of a job row's fields, and
//! `tests/it/openapi.rs` checks real answers against it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::flags::FlagView;
use crate::jobs::JobState;
use crate::ops::queues::{QueueStat, ScheduleRun};

// `http::job_body::job_json`.
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

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueList {
    /// Every queue that is configured or holds jobs, by name.
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

#[derive(Debug, Serialize, ToSchema)]
pub struct FlagList {
    pub flags: Vec<FlagView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FlagSet {
    pub name: String,
    pub enabled: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleRun>,
}
