//! `keel bench queue --breakdown`: where an idle worker's insert-to-start time goes, on Postgres.
//!
//! The bench observes each latency job from outside the worker, on one clock (the system's):
//!
//! - `t0` before the insert, `t1` when the insert (one statement, a durable commit with its
//!   `pg_notify`) returned;
//! - `tn` when a listener of the bench's own, on the jobs channel, received the job's notification
//!   (the worker's listener receives the same message at the same moment);
//! - `tc` the claim's start, as the worker wrote it into the row (`attempted_at`, the time the
//!   runner took just before sending its claim statement);
//! - `ts` when the handler started.
//!
//! Nothing here runs in the product: the trace is the bench's listener and one read of the rows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use secrecy::ExposeSecret;
use serde::Serialize;
use tokio::task::JoinHandle;

use keel::services::Services;

/// Microseconds since the epoch on the system clock.
pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// What the latency phase records per job, for the breakdown.
#[derive(Default)]
pub struct Trace {
    /// Job id → (t0, t1).
    pub inserted: Mutex<HashMap<i64, (i64, i64)>>,
    /// Job id → ts.
    pub started: Mutex<HashMap<i64, i64>>,
    /// Arrival times of the queue's notifications.
    pub notified: Mutex<Vec<i64>>,
}

/// One stage: medians and 99th percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub stage: &'static str,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Listens on the jobs channel and records when each notification about `queue` arrives.
pub async fn listen(
    services: &Services,
    queue: &str,
    trace: Arc<Trace>,
) -> Result<JoinHandle<()>, String> {
    let url = services.settings.database.url.expose_secret().to_string();
    let mut listener = sqlx::postgres::PgListener::connect(&url)
        .await
        .map_err(|e| {
            format!(
                "cannot LISTEN for the breakdown: {}",
                keel::store::redact(&e.to_string())
            )
        })?;
    listener
        .listen(keel::store::postgres_channel())
        .await
        .map_err(|e| format!("cannot LISTEN for the breakdown: {e}"))?;
    let queue = queue.to_string();
    Ok(tokio::spawn(async move {
        while let Ok(n) = listener.recv().await {
            let at = now_us();
            if n.payload() == queue {
                if let Ok(mut seen) = trace.notified.lock() {
                    seen.push(at);
                }
            }
        }
    }))
}

/// The stages of every traced job: each job's notification is the first not yet matched that
/// arrived after its insert began (jobs are inserted one at a time, in order).
pub async fn stages(services: &Services, queue: &str, trace: &Trace) -> Result<Vec<Stage>, String> {
    let keel::store::Db::Postgres(pool) = &services.db else {
        return Err("the breakdown needs Postgres".into());
    };
    let rows: Vec<(i64, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT id, attempted_at FROM jobs WHERE queue = $1 AND attempted_at IS NOT NULL",
    )
    .bind(queue)
    .fetch_all(&**pool)
    .await
    .map_err(|e| e.to_string())?;
    let claimed: HashMap<i64, i64> = rows
        .into_iter()
        .map(|(id, at)| (id, at.timestamp_micros()))
        .collect();
    let inserted = trace.inserted.lock().map_err(|e| e.to_string())?.clone();
    let started = trace.started.lock().map_err(|e| e.to_string())?.clone();
    let mut notified = trace.notified.lock().map_err(|e| e.to_string())?.clone();
    notified.sort_unstable();
    let mut jobs: Vec<(i64, (i64, i64))> = inserted.into_iter().collect();
    jobs.sort_by_key(|(_, (t0, _))| *t0);
    let names = [
        "insert + durable commit (t1 - t0)",
        "notification received (tn - t0)",
        "notification -> claim sent (tc - tn)",
        "claim sent -> handler started (ts - tc)",
        "insert began -> handler started (ts - t0)",
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut next = 0;
    for (id, (t0, t1)) in jobs {
        while next < notified.len() && notified[next] < t0 {
            next += 1;
        }
        let (Some(&tn), Some(&tc), Some(&ts)) =
            (notified.get(next), claimed.get(&id), started.get(&id))
        else {
            continue;
        };
        next += 1;
        let ms = |us: i64| us as f64 / 1000.0;
        for (i, value) in [t1 - t0, tn - t0, tc - tn, ts - tc, ts - t0]
            .into_iter()
            .enumerate()
        {
            samples[i].push(ms(value));
        }
    }
    Ok(names
        .into_iter()
        .zip(samples)
        .map(|(stage, mut values)| {
            values.sort_by(f64::total_cmp);
            Stage {
                stage,
                p50_ms: super::stats::percentile(&values, 0.50),
                p99_ms: super::stats::percentile(&values, 0.99),
            }
        })
        .collect())
}
