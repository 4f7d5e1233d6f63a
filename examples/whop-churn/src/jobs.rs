//! The two job kinds: the fan-out each tick enqueues, and one company's reminder.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use keel::jobs::{JobContext, JobFailure, JobSpec, Registry};
use keel::store::audit::AuditEntry;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{store, Churn, REMINDER_TIMEOUT};

pub const FAN_OUT: &str = "churn.fan_out";
pub const REMIND: &str = "churn.remind";
/// How the scheduler keys the jobs of the `churn-fan-out` schedule, before the tick's time.
const SCHEDULE_KEY_PREFIX: &str = "schedule:churn-fan-out:";
/// The period of the schedule: a tick is the start of one.
const TICK_SECONDS: i64 = 300;

/// One company's reminder for one tick (or one nudge).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remind {
    pub company: String,
    pub tick: String,
}

impl Remind {
    /// The job: unique per company and tick, time-boxed, breaking per company. One attempt: a
    /// reminder that failed is superseded by the next tick's.
    pub fn spec(&self) -> JobSpec {
        JobSpec::new(REMIND, json!(self))
            .unique_key(format!("{REMIND}:{}:{}", self.company, self.tick))
            .breaker_key(format!("whop-company:{}", self.company))
            .timeout(REMINDER_TIMEOUT)
            .max_attempts(1)
    }
}

/// The tick `now` falls in: the start of its five minutes.
pub fn tick_of(now: DateTime<Utc>) -> String {
    let start = now.timestamp() - now.timestamp().rem_euclid(TICK_SECONDS);
    DateTime::<Utc>::from_timestamp(start, 0)
        .unwrap_or(now)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Registers both kinds over `churn`.
pub fn register(registry: &mut Registry, churn: Arc<Churn>) {
    let fan = churn.clone();
    registry.register_fn(FAN_OUT, move |ctx, _args| fan_out(fan.clone(), ctx));
    registry.register_fn(REMIND, move |ctx, args| {
        let churn = churn.clone();
        async move {
            let job: Remind = serde_json::from_value(args)
                .map_err(|e| JobFailure::permanent(format!("arguments do not fit: {e}")))?;
            remind(&churn, ctx, job).await
        }
    });
}

/// The tick a fan-out job was fired for: the time in its schedule's unique key
/// (`schedule:churn-fan-out:<time>`), so a late or retried run still names its own tick; the
/// tick of `now` for a job enqueued otherwise.
async fn fired_tick(ctx: &JobContext, now: DateTime<Utc>) -> Result<String, JobFailure> {
    let key = store::job_key(&ctx.db, ctx.id).await?;
    let fired = key
        .as_deref()
        .and_then(|k| k.strip_prefix(SCHEDULE_KEY_PREFIX))
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    Ok(match fired {
        Some(at) => tick_of(at.with_timezone(&Utc)),
        None => tick_of(now),
    })
}

/// Enqueues one reminder per company with at-risk members, in one transaction.
async fn fan_out(churn: Arc<Churn>, ctx: JobContext) -> Result<(), JobFailure> {
    let now = churn.clock.now();
    let tick = fired_tick(&ctx, now).await?;
    let mut jobs = Vec::new();
    for company in store::at_risk_companies(&ctx.db).await? {
        let spec = Remind {
            company,
            tick: tick.clone(),
        }
        .spec();
        let job = spec
            .validate()
            .map_err(|p| JobFailure::permanent(format!("invalid reminder job: {p:?}")))?;
        jobs.push(job);
    }
    if jobs.is_empty() {
        return Ok(());
    }
    let mut tx = ctx.db.begin().await?;
    tx.insert_jobs(now, &jobs).await?;
    tx.commit().await?;
    keel::jobs::wake_queue(keel::jobs::DEFAULT_QUEUE);
    Ok(())
}

/// Sends one company's reminder, then records it with its audit row in one transaction.
async fn remind(churn: &Churn, ctx: JobContext, job: Remind) -> Result<(), JobFailure> {
    if store::sent(&ctx.db, &job.company, &job.tick).await? {
        return Ok(());
    }
    let members = store::at_risk_members(&ctx.db, &job.company).await?;
    if members.is_empty() {
        return Ok(());
    }
    let body = json!({ "company": job.company, "tick": job.tick, "members": members });
    let response = churn
        .http
        .post(&churn.notify_url)
        .json(&body)
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(JobFailure::retry(format!(
            "the notifier answered {}",
            response.status()
        )));
    }
    let now = churn.clock.now();
    let mut tx = ctx.db.begin().await?;
    let at = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    if store::record(&mut tx, &job.company, &job.tick, members.len(), &at).await? {
        let entry = AuditEntry::new(
            "churn",
            "churn.reminder",
            Some(format!("company:{}", job.company)),
            json!({ "tick": job.tick, "members": members.len(), "job_id": ctx.id }),
        );
        tx.audit(&entry, now).await?;
    }
    tx.commit().await?;
    Ok(())
}
