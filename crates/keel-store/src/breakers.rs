//! Breaker accounting after finished attempts, one statement text for both engines, used by each
//! engine's report-and-claim: a success closes a key's breaker; `threshold` consecutive failures
//! open it for the cooldown.

use chrono::{DateTime, Utc};
use keel_domain::jobs::{BreakerPolicy, Outcome, Report};

use super::sql::Ts;

const CLOSE: &str = "UPDATE job_breakers SET failures = 0, open_until = NULL WHERE key = $1";

const FAIL: &str = "INSERT INTO job_breakers (key, failures, open_until)
        VALUES ($1, 1, CASE WHEN $2 <= 1 THEN $3 END)
    ON CONFLICT (key) DO UPDATE SET failures = job_breakers.failures + 1,
        open_until = CASE WHEN job_breakers.failures + 1 >= $2 THEN $3
                          ELSE job_breakers.open_until END";

/// Defines, for one engine's connection type, the recording of the reports' breaker keys.
macro_rules! record_breakers_on {
    ($name:ident, $conn:ty) => {
        pub(crate) async fn $name(
            conn: &mut $conn,
            reports: &[Report],
            now: DateTime<Utc>,
            policy: BreakerPolicy,
        ) -> Result<(), sqlx::Error> {
            let open_until =
                Ts(now + chrono::Duration::from_std(policy.cooldown).unwrap_or_default());
            for report in reports {
                let Some(key) = &report.breaker_key else {
                    continue;
                };
                if report.outcome == Outcome::Completed {
                    sqlx::query(CLOSE).bind(key).execute(&mut *conn).await?;
                } else {
                    sqlx::query(FAIL)
                        .bind(key)
                        .bind(policy.threshold)
                        .bind(open_until)
                        .execute(&mut *conn)
                        .await?;
                }
            }
            Ok(())
        }
    };
}

record_breakers_on!(record_breakers_sqlite, sqlx::SqliteConnection);
record_breakers_on!(record_breakers_postgres, sqlx::PgConnection);
