//! Built-in diagnostic kinds for smoke tests and benchmarks.
//!
//! - `diag.noop`: succeeds at once.
//! - `diag.sleep {"ms": N}`: sleeps N milliseconds (at most one hour), then succeeds.
//! - `diag.fail {"times": N}`: fails its first N attempts, then succeeds.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Job, JobContext, JobFailure, Registry};

#[derive(Debug, Serialize, Deserialize)]
pub struct Noop {}

impl Job for Noop {
    const KIND: &'static str = "diag.noop";

    async fn run(self, _ctx: JobContext) -> Result<(), JobFailure> {
        Ok(())
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Sleep {
    pub ms: u64,
}

impl Job for Sleep {
    const KIND: &'static str = "diag.sleep";

    async fn run(self, _ctx: JobContext) -> Result<(), JobFailure> {
        tokio::time::sleep(Duration::from_millis(self.ms.min(3_600_000))).await;
        Ok(())
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Fail {
    pub times: i32,
}

impl Job for Fail {
    const KIND: &'static str = "diag.fail";

    async fn run(self, ctx: JobContext) -> Result<(), JobFailure> {
        if ctx.attempt <= self.times {
            tracing::info!(
                attempt = ctx.attempt,
                planned = self.times,
                "diag.fail: failing as planned"
            );
            Err(JobFailure::retry(format!(
                "diag.fail: attempt {} of {} planned failures",
                ctx.attempt, self.times
            )))
        } else {
            Ok(())
        }
    }
}

pub(super) fn register(registry: &mut Registry) {
    registry
        .register::<Noop>()
        .register::<Sleep>()
        .register::<Fail>();
}
