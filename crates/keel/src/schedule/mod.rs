//! Schedules: cron declarations that enqueue a job per tick. A firing records the tick
//! (`schedule_ticks`, unique on name and fire time) and inserts the job with the unique key
//! `schedule:NAME:FIRE_TIME` in one transaction, so any number of processes fire each tick once.

pub mod cron;
pub mod decl;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use cron::{Cron, CronError};
pub use decl::{Missed, ScheduleDecl};

use crate::clock::Clock;
use crate::flags::{self, Flags};
use crate::jobs::{JobSpec, KindDefaults};
use crate::store::audit::AuditEntry;
use crate::store::{Db, StoreError};

/// The built-in schedule (and job kind) that drops old raw payloads ([`crate::privacy`]).
pub const RETENTION_KIND: &str = "retention.events";
/// The built-in schedule (and job kind) that erases marked users and expires old audit detail
/// ([`crate::privacy`]).
pub const MAINTENANCE_KIND: &str = "privacy.maintenance";
/// The built-in schedule (and job kind) that removes abandoned uploads and expired objects
/// ([`crate::storage`]).
pub const STORAGE_CLEANUP_KIND: &str = "storage.cleanup";
/// When it runs: every hour, at minute 15.
pub const STORAGE_CLEANUP_CRON: &str = "15 * * * *";

/// A tick is fired late at most this long after its time when `missed = "skip"`.
const ON_TIME: chrono::Duration = chrono::Duration::seconds(60);

#[derive(Debug, Clone, Serialize)]
pub struct Schedule {
    pub name: String,
    #[serde(rename = "cron")]
    pub expr: String,
    /// The IANA time zone `expr` is read in (`UTC` unless declared).
    pub timezone: &'static str,
    pub kind: String,
    pub args: serde_json::Value,
    pub missed: &'static str,
    #[serde(skip)]
    pub cron: Cron,
    #[serde(skip)]
    catch_up: bool,
}

/// The outcome of one firing or trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Fired {
    pub job_id: i64,
    pub deduplicated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("no schedule named {0:?}")]
    Unknown(String),
    #[error("the tick was recorded but its job is gone")]
    Lost,
    #[error("schedule {0} declares an invalid job")]
    Invalid(String),
    #[error("enqueueing is switched off (flag enqueue)")]
    EnqueueDisabled,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The built-in schedules, then those of `keel.toml` (a declaration may replace a built-in).
pub fn declared(decls: &[ScheduleDecl]) -> Result<Vec<Schedule>, CronError> {
    let builtin = |name: &str, expr: &str| {
        let cron = Cron::parse(expr)?;
        Ok(schedule(
            name,
            expr,
            cron,
            name,
            serde_json::json!({}),
            Missed::Once,
        ))
    };
    let mut out = vec![
        builtin("jobs.prune", "0 * * * *")?,
        builtin(RETENTION_KIND, "0 2 * * *")?,
        builtin(MAINTENANCE_KIND, "0 3 * * 0")?,
        builtin(STORAGE_CLEANUP_KIND, STORAGE_CLEANUP_CRON)?,
    ];
    for decl in decls {
        let s = schedule(
            &decl.name,
            &decl.cron,
            decl.parse_cron()?,
            &decl.kind,
            decl.args.clone(),
            decl.missed,
        );
        out.retain(|existing| existing.name != s.name);
        out.push(s);
    }
    Ok(out)
}

fn schedule(
    name: &str,
    expr: &str,
    cron: Cron,
    kind: &str,
    args: serde_json::Value,
    missed: Missed,
) -> Schedule {
    Schedule {
        name: name.to_string(),
        expr: expr.to_string(),
        timezone: cron.zone(),
        kind: kind.to_string(),
        args,
        missed: match missed {
            Missed::Skip => "skip",
            Missed::Once => "once",
        },
        cron,
        catch_up: missed == Missed::Once,
    }
}

#[derive(Debug, Clone)]
pub struct Scheduler {
    db: Db,
    clock: Clock,
    flags: Flags,
    schedules: Arc<Vec<Schedule>>,
    defaults: KindDefaults,
}

impl Scheduler {
    pub fn new(db: Db, clock: Clock, flags: Flags, schedules: Vec<Schedule>) -> Self {
        Self {
            db,
            clock,
            flags,
            schedules: Arc::new(schedules),
            defaults: KindDefaults::default(),
        }
    }

    /// Fills in what declared kinds set (an HTTP kind's queue, attempts and timeout).
    pub fn with_defaults(mut self, defaults: KindDefaults) -> Self {
        self.defaults = defaults;
        self
    }

    pub fn schedules(&self) -> &[Schedule] {
        &self.schedules
    }

    pub fn get(&self, name: &str) -> Option<&Schedule> {
        self.schedules.iter().find(|s| s.name == name)
    }

    /// The latest recorded firing of each schedule, from its firing records.
    pub async fn latest_firings(
        &self,
    ) -> Result<std::collections::BTreeMap<String, crate::store::Firing>, StoreError> {
        self.db.latest_firings().await
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Fires `schedule` for `fire_at` unless that tick was fired already (then returns its job).
    async fn fire(
        &self,
        schedule: &Schedule,
        tick_name: &str,
        fire_at: DateTime<Utc>,
        unique_key: String,
        actor: Option<&str>,
    ) -> Result<Fired, ScheduleError> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        if !tx.record_tick(tick_name, fire_at, now).await? {
            let job = tx.tick_job(tick_name, fire_at, None).await?;
            tx.rollback().await?;
            return job
                .map(|job_id| Fired {
                    job_id,
                    deduplicated: true,
                })
                .ok_or(ScheduleError::Lost);
        }
        let spec = JobSpec::new(&schedule.kind, schedule.args.clone()).unique_key(unique_key);
        let job = self
            .defaults
            .apply(spec)
            .validate()
            .map_err(|_| ScheduleError::Invalid(schedule.name.clone()))?;
        let inserted = tx.insert_jobs(now, std::slice::from_ref(&job)).await?;
        let Some(enqueued) = inserted.into_iter().next() else {
            return Err(ScheduleError::Lost);
        };
        tx.tick_job(tick_name, fire_at, Some(enqueued.id)).await?;
        if let Some(actor) = actor {
            let entry = AuditEntry::new(
                actor,
                "schedule.trigger",
                Some(format!("schedule:{}", schedule.name)),
                serde_json::json!({ "job_id": enqueued.id, "fire_at": fire_at }),
            );
            tx.audit(&entry, now).await?;
        }
        tx.commit().await?;
        crate::jobs::wake_queue(&job.queue);
        Ok(Fired {
            job_id: enqueued.id,
            deduplicated: enqueued.deduplicated,
        })
    }

    /// Fires `name` now, on behalf of an external cron or an operator: once per period of its
    /// cron expression, or once per `idempotency_key` when one is given.
    pub async fn trigger(
        &self,
        name: &str,
        idempotency_key: Option<&str>,
        actor: &str,
    ) -> Result<Fired, ScheduleError> {
        let schedule = self
            .get(name)
            .ok_or_else(|| ScheduleError::Unknown(name.to_string()))?;
        if !self.flags.enabled(flags::ENQUEUE).await {
            return Err(ScheduleError::EnqueueDisabled);
        }
        match idempotency_key {
            Some(key) => {
                let tick_name = format!("{name}@{key}");
                let epoch = DateTime::<Utc>::UNIX_EPOCH;
                self.fire(
                    schedule,
                    &tick_name,
                    epoch,
                    format!("schedule:{name}@{key}"),
                    Some(actor),
                )
                .await
            }
            None => {
                let now = self.clock.now();
                let period = schedule.cron.latest_at_or_before(now).unwrap_or(now);
                self.fire(
                    schedule,
                    name,
                    period,
                    unique_key(name, period),
                    Some(actor),
                )
                .await
            }
        }
    }

    /// Runs the firing loop until `stop` turns true.
    pub fn spawn(self, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut seen: HashMap<String, DateTime<Utc>> = HashMap::new();
            loop {
                let now = self.clock.now();
                if self.flags.enabled(flags::SCHEDULER).await
                    && self.flags.enabled(flags::ENQUEUE).await
                {
                    self.tick(now, &mut seen).await;
                }
                let wait = self.until_next(self.clock.now());
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => return,
                }
            }
        })
    }

    async fn tick(&self, now: DateTime<Utc>, seen: &mut HashMap<String, DateTime<Utc>>) {
        for schedule in self.schedules.iter() {
            for due in due_ticks(schedule, seen.get(&schedule.name).copied(), now) {
                let key = unique_key(&schedule.name, due);
                match self.fire(schedule, &schedule.name, due, key, None).await {
                    Ok(fired) => {
                        seen.insert(schedule.name.clone(), due);
                        if !fired.deduplicated {
                            let metrics = crate::metrics::global();
                            metrics.schedule_firings.inc(&[&schedule.name]);
                            metrics
                                .schedule_last_fired
                                .set(&[&schedule.name], due.timestamp());
                            tracing::info!(schedule = %schedule.name, fire_at = %due, job = fired.job_id, "schedule fired");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(schedule = %schedule.name, error = %e, "schedule firing failed; will retry");
                        break;
                    }
                }
            }
            if let Some(latest) = schedule.cron.latest_at_or_before(now) {
                // Ticks too late to fire (`missed = "skip"`) count as handled.
                if !schedule.catch_up && now - latest > ON_TIME {
                    seen.insert(schedule.name.clone(), latest);
                }
            }
        }
    }

    /// Until the next tick of any schedule, at most one second (flags are re-read that often).
    fn until_next(&self, now: DateTime<Utc>) -> Duration {
        let next = self
            .schedules
            .iter()
            .filter_map(|s| s.cron.next_after(now))
            .min();
        next.and_then(|at| (at - now).to_std().ok())
            .unwrap_or(Duration::from_secs(1))
            .clamp(Duration::from_millis(20), Duration::from_secs(1))
    }
}

/// The ticks to fire now, oldest first: every tick after the last one this process handled that is
/// still on time (a loop that woke late fires each second it slept through, not only the last);
/// on a first pass, or for `missed = "once"` when none is on time, the latest tick alone.
fn due_ticks(
    schedule: &Schedule,
    handled: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    const MAX_PER_PASS: usize = 120;
    let Some(latest) = schedule.cron.latest_at_or_before(now) else {
        return Vec::new();
    };
    if handled == Some(latest) {
        return Vec::new();
    }
    let mut ticks = Vec::new();
    // Nothing older than the on-time window can fire, so the walk starts there.
    if let Some(mut t) = handled.map(|h| h.max(now - ON_TIME - chrono::Duration::seconds(1))) {
        while let Some(next) = schedule.cron.next_after(t).filter(|n| *n <= now) {
            if now - next <= ON_TIME {
                ticks.push(next);
            }
            if ticks.len() >= MAX_PER_PASS {
                break;
            }
            t = next;
        }
    }
    if ticks.is_empty() && (schedule.catch_up || now - latest <= ON_TIME) {
        ticks.push(latest);
    }
    ticks
}

pub fn unique_key(name: &str, fire_at: DateTime<Utc>) -> String {
    format!(
        "schedule:{name}:{}",
        fire_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_second(missed: Missed) -> Schedule {
        let expr = "* * * * * *";
        let cron = Cron::parse(expr).unwrap();
        schedule("s", expr, cron, "diag.noop", serde_json::json!({}), missed)
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_late_loop_fires_every_second_it_slept_through() {
        let s = every_second(Missed::Skip);
        let ticks = due_ticks(
            &s,
            Some(at("2026-01-01T00:00:10Z")),
            at("2026-01-01T00:00:13.5Z"),
        );
        assert_eq!(
            ticks,
            vec![
                at("2026-01-01T00:00:11Z"),
                at("2026-01-01T00:00:12Z"),
                at("2026-01-01T00:00:13Z")
            ]
        );
        assert!(due_ticks(
            &s,
            Some(at("2026-01-01T00:00:13Z")),
            at("2026-01-01T00:00:13.5Z")
        )
        .is_empty());
        assert_eq!(
            due_ticks(&s, None, at("2026-01-01T00:00:13.5Z")),
            vec![at("2026-01-01T00:00:13Z")]
        );
    }

    #[test]
    fn ticks_past_the_window_are_skipped_or_caught_up_once() {
        let hourly = |missed| {
            let cron = Cron::parse("0 * * * *").unwrap();
            schedule(
                "h",
                "0 * * * *",
                cron,
                "diag.noop",
                serde_json::json!({}),
                missed,
            )
        };
        let now = at("2026-01-01T10:30:00Z");
        assert!(due_ticks(&hourly(Missed::Skip), Some(at("2026-01-01T08:00:00Z")), now).is_empty());
        assert_eq!(
            due_ticks(&hourly(Missed::Once), Some(at("2026-01-01T08:00:00Z")), now),
            vec![at("2026-01-01T10:00:00Z")]
        );
    }
}
