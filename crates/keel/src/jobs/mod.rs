//! Durable jobs: enqueue (alone, in batches, or inside the caller's transaction), the handler
//! registry, and the worker that runs them with leases, retries, timeouts and breakers.

mod app_job;
pub mod backoff;
mod diag;
mod handler;
pub mod http_kind;
mod queue;
mod runner;
mod settings;
mod spec;
mod wake;
mod worker;
mod worker_config;

pub use app_job::AppJob;
pub use handler::{Job, JobContext, JobFailure, Registry};
pub use http_kind::{HttpKind, KindDefaults};
pub use queue::{Depth, JobError, Queue};
pub use settings::{JobSettings, QueueSettings};
pub use spec::JobSpec;
pub use worker::Worker;
pub use worker_config::WorkerConfig;

pub use crate::store::jobs::{
    ArgMatch, ArgMatchError, Enqueued, JobAction, JobFilter, JobRow, JobState, QueueCounts,
};

/// The queue jobs go to when none is named.
pub const DEFAULT_QUEUE: &str = "default";

/// Queue and kind names: 1 to 100 characters of `[A-Za-z0-9._:-]`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

/// Wakes this process's idle workers of `queue` (after a commit that made jobs available).
pub fn wake_queue(queue: &str) {
    wake::queue(queue);
}

/// What a refusal of an undeclared kind says.
pub fn undeclared(kind: &str) -> String {
    format!(
        "kind {kind} is not declared: no built-in kind, Rust handler or [jobs.http] entry of \
         keel.toml has this name"
    )
}
