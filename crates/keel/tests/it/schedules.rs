//! Schedules: any number of schedulers fire each tick once, the scheduler switch stops firings,
//! and triggers are idempotent within the schedule's period or per key.

use crate::jobs_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use jobs_support::{config, setup_with_toml, Env};
use keel::flags::Flags;
use keel::jobs::{JobFilter, JobRow, Registry};
use keel::schedule::{declared, ScheduleError, Scheduler};
use keel::store::Db;
use keel_testkit::TestDb;
use tokio::sync::watch;

const TOML: &str = r#"
[[schedules]]
name = "every-second"
cron = "* * * * * *"
kind = "diag.noop"
"#;

const PREFIX: &str = "schedule:every-second:";

/// A scheduler as another process would run it: its own pool and its own flags cache.
fn process_scheduler(env: &Env) -> Scheduler {
    let db = Db::connect_lazy(&env.settings.database).expect("database pool");
    let flags = Flags::new(db.clone(), env.clock.clone(), true, true, true);
    let schedules = declared(&env.settings.file.schedules).expect("schedules parse");
    Scheduler::new(db, env.clock.clone(), flags, schedules)
}

async fn fired_jobs(env: &Env) -> Vec<JobRow> {
    env.db
        .list_jobs(&JobFilter {
            kind: Some("diag.noop".into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("list jobs")
}

/// The fire time a schedule job's unique key names (whole seconds, UTC, RFC 3339).
fn fire_time(row: &JobRow) -> DateTime<Utc> {
    let key = row
        .unique_key
        .as_deref()
        .unwrap_or_else(|| panic!("a schedule job has a unique key: {row:?}"));
    let at = key
        .strip_prefix(PREFIX)
        .unwrap_or_else(|| panic!("unexpected unique key {key}"));
    assert!(
        at.ends_with('Z') && !at.contains('.'),
        "RFC 3339 in UTC, whole seconds: {key}"
    );
    let parsed = DateTime::parse_from_rfc3339(at)
        .unwrap_or_else(|e| panic!("{key}: {e}"))
        .with_timezone(&Utc);
    assert_eq!(parsed.nanosecond(), 0);
    parsed
}

/// Sleeps until just after the next whole second of `now`.
async fn next_second(now: DateTime<Utc>) {
    let into = now.timestamp_subsec_millis() as u64;
    tokio::time::sleep(Duration::from_millis(1000 - into + 20)).await;
}

keel_testkit::engine_test!(three_schedulers_fire_each_tick_once_until_switched_off);
async fn three_schedulers_fire_each_tick_once_until_switched_off(db: TestDb) {
    let env = setup_with_toml(db, Some(TOML)).await;
    let db = &env.app.db;
    let mut registry = Registry::with_builtins();
    registry.register_fn("jobs.prune", |_ctx, _args| async move { Ok(()) });
    // A worker finishes each firing at once, so a live unique key cannot hide a second firing.
    let worker = env.start_worker(registry, config(&[("default", 4)]));
    let (stop, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let handles: Vec<_> = (0..3)
        .map(|_| process_scheduler(&env).spawn(stop_rx.clone()))
        .collect();
    tokio::time::sleep(Duration::from_millis(3500)).await;

    // The schedulers keep firing: compare counts taken in one statement.
    let duplicates = db
        .scalar("SELECT count(*) - count(DISTINCT unique_key) FROM jobs WHERE kind = 'diag.noop'")
        .await;
    assert_eq!(duplicates, 0, "one job per fire second");
    let untracked = db
        .scalar(
            "SELECT (SELECT count(*) FROM jobs WHERE kind = 'diag.noop')
                      - (SELECT count(*) FROM schedule_ticks WHERE name = 'every-second')",
        )
        .await;
    assert_eq!(untracked, 0, "one recorded tick per job");
    let total = db
        .scalar("SELECT count(*) FROM jobs WHERE kind = 'diag.noop'")
        .await;
    assert!(
        total >= 2,
        "an every-second schedule fired {total} times in {:?}",
        started.elapsed()
    );
    let rows = fired_jobs(&env).await;
    let seconds: BTreeSet<DateTime<Utc>> = rows.iter().map(fire_time).collect();
    assert_eq!(seconds.len(), rows.len(), "distinct fire seconds");
    let completed = rows
        .iter()
        .filter(|r| r.state == keel::jobs::JobState::Completed)
        .count();
    assert!(completed >= 1, "the worker ran the firings: {rows:#?}");
    // The built-in hourly prune fired once too, not three times.
    assert_eq!(
        db.scalar("SELECT count(*) FROM jobs WHERE kind = 'jobs.prune'")
            .await,
        1
    );

    env.flags.set("scheduler", false, "test").await.unwrap();
    let switched = Instant::now();
    // Every process sees the switch within its flags staleness (2 s) plus one loop (1 s).
    tokio::time::sleep(Duration::from_millis(3300)).await;
    let before = db
        .scalar("SELECT count(*) FROM jobs WHERE kind = 'diag.noop'")
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = db
        .scalar("SELECT count(*) FROM jobs WHERE kind = 'diag.noop'")
        .await;
    assert_eq!(
        after,
        before,
        "no firing {:?} after the switch",
        switched.elapsed()
    );

    let _ = stop.send(true);
    for handle in handles {
        tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .expect("scheduler stops")
            .unwrap();
    }
    worker.stop().await;
}

keel_testkit::engine_test!(triggers_are_idempotent_within_the_period_or_per_key);
async fn triggers_are_idempotent_within_the_period_or_per_key(db: TestDb) {
    let env = setup_with_toml(db, Some(TOML)).await;
    let db = &env.app.db;
    let scheduler = Scheduler::new(
        env.db.clone(),
        env.clock.clone(),
        env.flags.clone(),
        declared(&env.settings.file.schedules).unwrap(),
    );
    assert!(scheduler.get("every-second").is_some() && scheduler.get("jobs.prune").is_some());

    next_second(env.clock.now()).await;
    let before = env.clock.now();
    let first = scheduler
        .trigger("every-second", None, "test")
        .await
        .unwrap();
    let second = scheduler
        .trigger("every-second", None, "test")
        .await
        .unwrap();
    let after = env.clock.now();
    assert_eq!(
        before.timestamp(),
        after.timestamp(),
        "both triggers ran within one second"
    );
    assert!(!first.deduplicated);
    assert_eq!((second.job_id, second.deduplicated), (first.job_id, true));
    let row = env.job(first.job_id).await;
    assert_eq!(row.kind, "diag.noop");
    assert_eq!(fire_time(&row).timestamp(), before.timestamp());
    assert_eq!(
        row.unique_key.as_deref(),
        Some(keel::schedule::unique_key("every-second", fire_time(&row)).as_str())
    );

    // The next period fires again.
    next_second(env.clock.now()).await;
    let third = scheduler
        .trigger("every-second", None, "test")
        .await
        .unwrap();
    assert!(!third.deduplicated && third.job_id != first.job_id);

    let keyed = scheduler
        .trigger("every-second", Some("key-1"), "test")
        .await
        .unwrap();
    assert!(!keyed.deduplicated);
    assert!(keyed.job_id != first.job_id && keyed.job_id != third.job_id);
    let again = scheduler
        .trigger("every-second", Some("key-1"), "test")
        .await
        .unwrap();
    assert_eq!((again.job_id, again.deduplicated), (keyed.job_id, true));
    let other = scheduler
        .trigger("every-second", Some("key-2"), "test")
        .await
        .unwrap();
    assert!(!other.deduplicated && other.job_id != keyed.job_id);
    assert_eq!(
        db.scalar("SELECT count(*) FROM jobs WHERE kind = 'diag.noop'")
            .await,
        4
    );

    let audit = env
        .db
        .audit_rows(Some("schedule:every-second"), 20)
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .all(|r| r.action == "schedule.trigger" && r.actor == "test"),
        "{audit:#?}"
    );
    assert!(
        audit.len() >= 4,
        "each firing trigger is audited: {audit:#?}"
    );

    // With enqueueing switched off, a trigger enqueues nothing.
    env.flags.set("enqueue", false, "test").await.unwrap();
    match scheduler
        .trigger("every-second", Some("key-3"), "test")
        .await
    {
        Err(ScheduleError::EnqueueDisabled) => {}
        other => panic!("expected ScheduleError::EnqueueDisabled, got {other:?}"),
    }
    assert_eq!(
        db.scalar("SELECT count(*) FROM jobs WHERE kind = 'diag.noop'")
            .await,
        4
    );
    env.flags.set("enqueue", true, "test").await.unwrap();

    match scheduler.trigger("no-such-schedule", None, "test").await {
        Err(ScheduleError::Unknown(name)) => assert_eq!(name, "no-such-schedule"),
        other => panic!("expected ScheduleError::Unknown, got {other:?}"),
    }
}
