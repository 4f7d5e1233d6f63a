//! Job rows and the operations on them. Batch inserts and claims are each engine's own
//! (`sqlite/jobs.rs`, `postgres/jobs.rs`); the insert of one job is one statement text for both
//! (`job_insert.rs`).

use chrono::{DateTime, Utc};

pub use keel_domain::jobs::*;

use super::{postgres, sqlite, Db, StoreError};

macro_rules! on_engine {
    ($db:expr, $f:ident $(, $arg:expr)*) => {
        match $db {
            Db::Sqlite(pool) => sqlite::jobs::$f(pool $(, $arg)*).await,
            Db::Postgres(pool) => postgres::jobs::$f(pool $(, $arg)*).await,
        }
    };
}

impl Db {
    /// Inserts jobs (unique keys deduplicated against live jobs) in one transaction.
    pub async fn insert_jobs(
        &self,
        now: DateTime<Utc>,
        jobs: &[NewJob],
    ) -> Result<Vec<Enqueued>, StoreError> {
        Ok(on_engine!(self, insert_jobs, now, jobs)?)
    }

    /// Writes the outcomes of finished attempts and claims up to `spec.limit` due jobs, in one
    /// round trip where the engine allows.
    pub async fn report_and_claim(
        &self,
        reports: &[Report],
        spec: &ClaimSpec<'_>,
        breakers: BreakerPolicy,
    ) -> Result<Vec<Claimed>, StoreError> {
        Ok(on_engine!(self, report_and_claim, reports, spec, breakers)?)
    }
}
