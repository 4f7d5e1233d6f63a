//! The worker: priorities, run_at, retries with backoff, permanent failures, panics, timeouts,
//! breakers, the kill switches, operator retries and graceful release at shutdown.

use crate::jobs_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs_support::{config, setup, HOUR};
use keel::jobs::{JobFailure, JobFilter, JobSpec, JobState, Registry};
use keel::store::jobs::BreakerPolicy;
use keel_testkit::TestDb;
use serde_json::json;

fn noop(queue: &str) -> JobSpec {
    JobSpec::new("diag.noop", json!({})).queue(queue)
}

/// A registry with the built-ins and `test.record`, which appends its `tag` argument to the log.
fn recording() -> (Registry, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut registry = Registry::with_builtins();
    let sink = log.clone();
    registry.register_fn("test.record", move |_ctx, args| {
        let sink = sink.clone();
        async move {
            sink.lock()
                .unwrap()
                .push(args["tag"].as_str().unwrap_or_default().to_string());
            Ok(())
        }
    });
    (registry, log)
}

fn secs_until(at: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> f64 {
    (at - now).num_milliseconds() as f64 / 1000.0
}

keel_testkit::engine_test!(lower_priority_runs_first);
async fn lower_priority_runs_first(db: TestDb) {
    let env = setup(db).await;
    let mut ids = Vec::new();
    for p in [5i16, 0, 3] {
        let spec = JobSpec::new("test.record", json!({ "tag": p.to_string() }))
            .queue("prio")
            .priority(p);
        ids.push(env.enqueue(spec).await);
    }
    let (registry, log) = recording();
    let worker = env.start_worker(registry, config(&[("prio", 1)]));
    for id in &ids {
        env.wait_state(*id, JobState::Completed).await;
    }
    worker.stop().await;
    assert_eq!(*log.lock().unwrap(), vec!["0", "3", "5"]);
}

keel_testkit::engine_test!(a_job_runs_once_it_is_due);
async fn a_job_runs_once_it_is_due(db: TestDb) {
    let env = setup(db).await;
    let worker = env.start_worker(Registry::with_builtins(), config(&[("later", 2)]));
    let at = env.clock.now() + chrono::Duration::minutes(10);
    let id = env.enqueue(noop("later").run_at(at)).await;
    let now_job = env.enqueue(noop("later")).await;
    assert_eq!(env.job(id).await.state, JobState::Scheduled);
    env.wait_state(now_job, JobState::Completed).await;
    env.stays(id, Duration::from_millis(400), "scheduled", |r| {
        r.state == JobState::Scheduled && r.attempt == 0
    })
    .await;
    env.clock.advance(Duration::from_secs(11 * 60));
    let row = env.wait_state(id, JobState::Completed).await;
    assert_eq!(row.attempt, 1);
    worker.stop().await;
}

keel_testkit::engine_test!(failures_retry_with_backoff_until_success_or_discard);
async fn failures_retry_with_backoff_until_success_or_discard(db: TestDb) {
    let env = setup(db).await;
    let worker = env.start_worker(Registry::with_builtins(), config(&[("retry", 2)]));
    let flaky = env
        .enqueue(
            JobSpec::new("diag.fail", json!({ "times": 2 }))
                .queue("retry")
                .max_attempts(5),
        )
        .await;
    let row = env
        .wait_job(flaky, "retryable after attempt 1", |r| {
            r.state == JobState::Retryable && r.attempt == 1
        })
        .await;
    let wait = secs_until(row.run_at, env.clock.now());
    assert!(
        (13.0..=18.0).contains(&wait),
        "first retry after ~16 s, not {wait} s: {row:?}"
    );
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("diag.fail"),
        "{row:?}"
    );
    // Not retried before it is due.
    env.stays(flaky, Duration::from_millis(300), "retryable", |r| {
        r.attempt == 1
    })
    .await;
    env.clock.advance(HOUR);
    let row = env
        .wait_job(flaky, "retryable after attempt 2", |r| {
            r.state == JobState::Retryable && r.attempt == 2
        })
        .await;
    let wait = secs_until(row.run_at, env.clock.now());
    assert!(
        (28.0..=35.0).contains(&wait),
        "second retry after ~31 s, not {wait} s: {row:?}"
    );
    env.clock.advance(HOUR);
    let row = env.wait_state(flaky, JobState::Completed).await;
    assert_eq!(row.attempt, 3, "{row:?}");
    assert!(row.finished_at.is_some());

    let doomed = env
        .enqueue(
            JobSpec::new("diag.fail", json!({ "times": 10 }))
                .queue("retry")
                .max_attempts(2),
        )
        .await;
    env.wait_job(doomed, "retryable after attempt 1", |r| {
        r.state == JobState::Retryable && r.attempt == 1
    })
    .await;
    env.clock.advance(HOUR);
    let row = env.wait_state(doomed, JobState::Discarded).await;
    assert_eq!(row.attempt, 2, "{row:?}");
    assert!(row.finished_at.is_some(), "{row:?}");
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("attempt 2"),
        "{row:?}"
    );
    worker.stop().await;
}

keel_testkit::engine_test!(permanent_failures_discard_and_panics_are_retryable_failures);
async fn permanent_failures_discard_and_panics_are_retryable_failures(db: TestDb) {
    let env = setup(db).await;
    let mut registry = Registry::with_builtins();
    registry.register_fn("test.permanent", |_ctx, _args| async move {
        Err(JobFailure::permanent("the input is wrong"))
    });
    registry.register_fn("test.panic", |ctx, _args| async move {
        if ctx.attempt == 1 {
            panic!("handler blew up");
        }
        Ok(())
    });
    let worker = env.start_worker(registry, config(&[("fail", 1)]));
    let permanent = env
        .enqueue(
            JobSpec::new("test.permanent", json!({}))
                .queue("fail")
                .max_attempts(5),
        )
        .await;
    let row = env.wait_state(permanent, JobState::Discarded).await;
    assert_eq!(row.attempt, 1, "{row:?}");
    assert_eq!(row.last_error.as_deref(), Some("the input is wrong"));

    let panics = env
        .enqueue(
            JobSpec::new("test.panic", json!({}))
                .queue("fail")
                .max_attempts(3),
        )
        .await;
    let row = env
        .wait_job(panics, "a failed attempt", |r| {
            r.state == JobState::Retryable
        })
        .await;
    assert_eq!(row.attempt, 1);
    let error = row.last_error.unwrap_or_default();
    assert!(
        error.contains("panic") && error.contains("handler blew up"),
        "{error}"
    );
    // The worker survived: the next job runs, on the same single slot.
    let next = env.enqueue(noop("fail")).await;
    env.wait_state(next, JobState::Completed).await;
    env.clock.advance(HOUR);
    let row = env.wait_state(panics, JobState::Completed).await;
    assert_eq!(row.attempt, 2);

    // A kind no handler knows is a retryable failure too, never a crash.
    let unknown = env
        .enqueue(
            JobSpec::new("test.unknown", json!({}))
                .queue("fail")
                .max_attempts(1),
        )
        .await;
    let row = env.wait_state(unknown, JobState::Discarded).await;
    assert!(row.last_error.unwrap_or_default().contains("no handler"));
    worker.stop().await;
}

keel_testkit::engine_test!(a_job_past_its_timeout_fails);
async fn a_job_past_its_timeout_fails(db: TestDb) {
    let env = setup(db).await;
    let worker = env.start_worker(Registry::with_builtins(), config(&[("slow", 2)]));
    let started = std::time::Instant::now();
    let slow = JobSpec::new("diag.sleep", json!({ "ms": 5000 }))
        .queue("slow")
        .timeout(Duration::from_secs(1))
        .max_attempts(1);
    let id = env.enqueue(slow).await;
    let row = env.wait_state(id, JobState::Discarded).await;
    assert!(
        started.elapsed() < Duration::from_millis(4500),
        "failed at the timeout, not at the end: {:?}",
        started.elapsed()
    );
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("timed out"),
        "{row:?}"
    );
    // Within its timeout, the same kind completes.
    let quick = env
        .enqueue(
            JobSpec::new("diag.sleep", json!({ "ms": 50 }))
                .queue("slow")
                .timeout(Duration::from_secs(1)),
        )
        .await;
    env.wait_state(quick, JobState::Completed).await;
    worker.stop().await;
}

keel_testkit::engine_test!(a_failing_breaker_key_does_not_starve_the_others);
async fn a_failing_breaker_key_does_not_starve_the_others(db: TestDb) {
    let env = setup(db).await;
    let mut registry = Registry::with_builtins();
    registry.register_fn("test.tenant", |_ctx, args| async move {
        match args["tenant"].as_str() {
            Some("a") => Err(JobFailure::retry("tenant a is down")),
            _ => Ok(()),
        }
    });
    let mut cfg = config(&[("tenants", 4)]);
    cfg.breaker = BreakerPolicy {
        threshold: 2,
        cooldown: HOUR,
    };
    let worker = env.start_worker(registry, cfg);
    let tenant = |t: &str| {
        let spec = JobSpec::new("test.tenant", json!({ "tenant": t }))
            .queue("tenants")
            .max_attempts(10);
        if t == "none" {
            spec
        } else {
            spec.breaker_key(format!("tenant-{t}"))
        }
    };
    let first = env
        .queue
        .enqueue_many(&[tenant("a"), tenant("a")])
        .await
        .unwrap();
    for e in &first {
        env.wait_job(e.id, "failed once", |r| {
            r.state == JobState::Retryable && r.attempt == 1
        })
        .await;
    }
    // The breaker of tenant-a is open now.
    let specs = [
        tenant("a"),
        tenant("b"),
        tenant("a"),
        tenant("none"),
        tenant("b"),
        tenant("a"),
        tenant("none"),
    ];
    let later: Vec<i64> = env
        .queue
        .enqueue_many(&specs)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    for (i, t) in ["a", "b", "a", "none", "b", "a", "none"].iter().enumerate() {
        if *t != "a" {
            env.wait_state(later[i], JobState::Completed).await;
        }
    }
    let held: Vec<i64> = later
        .iter()
        .enumerate()
        .filter(|(i, _)| [0, 2, 5].contains(i))
        .map(|(_, id)| *id)
        .collect();
    // Past the retry delay of the first two, within the cool-down: tenant-a stays deferred.
    env.clock.advance(Duration::from_secs(5 * 60));
    for id in &held {
        env.stays(*id, Duration::from_millis(100), "unclaimed", |r| {
            r.state == JobState::Available && r.attempt == 0
        })
        .await;
    }
    for e in &first {
        env.stays(e.id, Duration::from_millis(100), "deferred", |r| {
            r.state == JobState::Retryable && r.attempt == 1
        })
        .await;
    }
    // After the cool-down, tenant-a jobs are tried again.
    env.clock.advance(2 * HOUR);
    for id in held.iter().chain(first.iter().map(|e| &e.id)) {
        env.wait_job(*id, "tried after the cool-down", |r| {
            r.attempt >= 1 && r.state != JobState::Running
        })
        .await;
    }
    worker.stop().await;
}

keel_testkit::engine_test!(the_workers_switch_stops_new_claims_and_lets_running_jobs_finish);
async fn the_workers_switch_stops_new_claims_and_lets_running_jobs_finish(db: TestDb) {
    let env = setup(db).await;
    let worker = env.start_worker(Registry::with_builtins(), config(&[("ks", 2)]));
    let long = env
        .enqueue(JobSpec::new("diag.sleep", json!({ "ms": 1000 })).queue("ks"))
        .await;
    env.wait_state(long, JobState::Running).await;
    env.flags.set("workers", false, "test").await.unwrap();
    let held = env.enqueue(noop("ks")).await;
    env.wait_state(long, JobState::Completed).await;
    env.stays(held, Duration::from_secs(3), "available", |r| {
        r.state == JobState::Available && r.attempt == 0
    })
    .await;
    env.flags.set("workers", true, "test").await.unwrap();
    let started = std::time::Instant::now();
    env.wait_state(held, JobState::Completed).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "resumed within 5 s"
    );
    worker.stop().await;
}

keel_testkit::engine_test!(pausing_a_queue_stops_only_that_queue);
async fn pausing_a_queue_stops_only_that_queue(db: TestDb) {
    let env = setup(db).await;
    let worker = env.start_worker(Registry::with_builtins(), config(&[("q1", 2), ("q2", 2)]));
    env.queue.set_paused("q1", true, "test").await.unwrap();
    let paused = env.enqueue(noop("q1")).await;
    let open = env.enqueue(noop("q2")).await;
    env.wait_state(open, JobState::Completed).await;
    env.stays(paused, Duration::from_millis(1500), "available", |r| {
        r.state == JobState::Available
    })
    .await;
    env.queue.set_paused("q1", false, "test").await.unwrap();
    env.wait_state(paused, JobState::Completed).await;
    let audit = env.db.audit_rows(Some("flag:queue:q1"), 10).await.unwrap();
    assert_eq!(audit.len(), 2, "{audit:#?}");
    assert!(audit.iter().all(|r| r.action == "flag.set"));
    worker.stop().await;
}

keel_testkit::engine_test!(an_operator_retry_runs_a_discarded_job_again);
async fn an_operator_retry_runs_a_discarded_job_again(db: TestDb) {
    let env = setup(db).await;
    let worker = env.start_worker(Registry::with_builtins(), config(&[("ops", 1)]));
    let id = env
        .enqueue(
            JobSpec::new("diag.fail", json!({ "times": 1 }))
                .queue("ops")
                .max_attempts(1),
        )
        .await;
    let row = env.wait_state(id, JobState::Discarded).await;
    assert_eq!(row.attempt, 1);
    assert!(row.last_error.is_some());
    let ids = env
        .queue
        .retry(
            &JobFilter {
                id: Some(id),
                limit: 10,
                ..Default::default()
            },
            "test",
        )
        .await
        .unwrap();
    assert_eq!(ids, vec![id]);
    let row = env.wait_state(id, JobState::Completed).await;
    assert_eq!(row.attempt, 2, "{row:?}");
    let audit = env
        .db
        .audit_rows(Some(&format!("job:{id}")), 10)
        .await
        .unwrap();
    assert_eq!(
        audit.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(),
        vec!["job.retry"]
    );
    worker.stop().await;
}

keel_testkit::engine_test!(stopping_releases_unfinished_jobs_after_the_grace_period);
async fn stopping_releases_unfinished_jobs_after_the_grace_period(db: TestDb) {
    let env = setup(db).await;
    let mut cfg = config(&[("grace", 2)]);
    cfg.grace = Duration::from_secs(1);
    let worker = env.start_worker(Registry::with_builtins(), cfg.clone());
    let long = env
        .enqueue(JobSpec::new("diag.sleep", json!({ "ms": 10_000 })).queue("grace"))
        .await;
    let short = env
        .enqueue(JobSpec::new("diag.sleep", json!({ "ms": 700 })).queue("grace"))
        .await;
    env.wait_state(long, JobState::Running).await;
    env.wait_state(short, JobState::Running).await;
    let started = std::time::Instant::now();
    worker.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped soon after the grace: {:?}",
        started.elapsed()
    );
    let row = env.job(long).await;
    assert_eq!(
        (row.state, row.attempt),
        (JobState::Available, 0),
        "released, attempt not counted: {row:?}"
    );
    let row = env.job(short).await;
    assert_eq!(
        row.state,
        JobState::Completed,
        "finished within the grace: {row:?}"
    );
    // Another worker picks the released job up.
    cfg.grace = Duration::from_millis(200);
    let worker = env.start_worker(Registry::with_builtins(), cfg);
    env.wait_job(long, "running again", |r| {
        r.state == JobState::Running && r.attempt == 1
    })
    .await;
    worker.stop().await;
}

keel_testkit::engine_test!(heartbeats_keep_a_job_longer_than_its_lease);
async fn heartbeats_keep_a_job_longer_than_its_lease(db: TestDb) {
    let env = setup(db).await;
    let runs = Arc::new(Mutex::new(0));
    let mut registry = Registry::with_builtins();
    let counter = runs.clone();
    registry.register_fn("test.long", move |_ctx, _args| {
        *counter.lock().unwrap() += 1;
        async move {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            Ok(())
        }
    });
    let mut cfg = config(&[("hb", 1)]);
    cfg.lease = Duration::from_secs(1);
    let worker = env.start_worker(registry, cfg);
    let id = env
        .enqueue(JobSpec::new("test.long", json!({})).queue("hb"))
        .await;
    let row = env.wait_state(id, JobState::Completed).await;
    assert_eq!(
        row.attempt, 1,
        "never rescued while its worker lives: {row:?}"
    );
    assert_eq!(*runs.lock().unwrap(), 1);
    assert!(row.last_error.is_none(), "{row:?}");
    worker.stop().await;
}

keel_testkit::engine_test!(two_workers_run_each_job_exactly_once);
async fn two_workers_run_each_job_exactly_once(db: TestDb) {
    let env = setup(db).await;
    let db = &env.app.db;
    let runs: Arc<Mutex<std::collections::HashMap<i64, usize>>> = Arc::default();
    let registry = |runs: Arc<Mutex<std::collections::HashMap<i64, usize>>>| {
        let mut registry = Registry::with_builtins();
        registry.register_fn("test.count", move |ctx, _args| {
            *runs.lock().unwrap().entry(ctx.id).or_default() += 1;
            async move { Ok(()) }
        });
        registry
    };
    let specs: Vec<JobSpec> = (0..300)
        .map(|_| JobSpec::new("test.count", json!({})).queue("pair"))
        .collect();
    let ids: Vec<i64> = env
        .queue
        .enqueue_many(&specs)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    let one = env.start_worker(registry(runs.clone()), config(&[("pair", 4)]));
    let two = env.start_worker(registry(runs.clone()), config(&[("pair", 4)]));
    env.wait_state(*ids.last().unwrap(), JobState::Completed)
        .await;
    keel_testkit::eventually("every job completed", jobs_support::DEADLINE, || async {
        let n = db
            .scalar("SELECT count(*) FROM jobs WHERE queue = 'pair' AND state = 'completed'")
            .await;
        (n == 300).then_some(())
    })
    .await;
    one.stop().await;
    two.stop().await;
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 300);
    assert!(runs.values().all(|n| *n == 1), "a job ran twice: {runs:?}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM jobs WHERE queue = 'pair' AND attempt <> 1")
            .await,
        0
    );
}

keel_testkit::engine_test!(a_busy_or_paused_runner_waits_without_spinning);
async fn a_busy_or_paused_runner_waits_without_spinning(db: TestDb) {
    let env = setup(db).await;
    let worker = env.start_worker(
        Registry::with_builtins(),
        config(&[("full", 1), ("held", 1)]),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = wakeups(Duration::from_secs(1)).await;
    // "full" has its only slot taken for a while; "held" is paused with a job waiting.
    env.queue.set_paused("held", true, "test").await.unwrap();
    let long = env
        .enqueue(JobSpec::new("diag.sleep", json!({ "ms": 2500 })).queue("full"))
        .await;
    let held = env.enqueue(noop("held")).await;
    env.wait_state(long, JobState::Running).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waiting = wakeups(Duration::from_secs(1)).await;
    // Polling every 100 ms, two runners need a few dozen wake-ups a second, not thousands.
    assert!(
            waiting < 1000,
            "the runtime woke {waiting} times in 1 s while both runners could only wait ({idle} when idle)"
        );
    assert_eq!(env.job(held).await.state, JobState::Available);
    env.wait_state(long, JobState::Completed).await;
    worker.stop().await;
}

/// How often this test's runtime threads parked (ran out of work and slept) during `period`.
async fn wakeups(period: Duration) -> u64 {
    let metrics = tokio::runtime::Handle::current().metrics();
    let parks = || {
        (0..metrics.num_workers())
            .map(|w| metrics.worker_park_count(w))
            .sum::<u64>()
    };
    let before = parks();
    tokio::time::sleep(period).await;
    parks() - before
}
