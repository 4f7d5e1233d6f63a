//! The job store and the queue's front door: enqueue (alone, in batches, in the caller's
//! transaction), unique keys, kill switches, operator actions and their audit rows, lease rescue,
//! pruning and counts. No worker runs here; claims are made through the store directly.

use crate::jobs_support;

use std::time::Duration;

use jobs_support::setup;
use keel::flags::{FlagError, Flags};
use keel::jobs::{JobError, JobFilter, JobSpec, JobState, Queue};
use keel::store::jobs::{BreakerPolicy, ClaimSpec, Outcome, Report};
use keel::store::Db;
use keel_testkit::eventually;
use keel_testkit::TestDb;
use serde_json::json;

mod actions;
mod leases;
mod pools;

mod upkeep;

const POLICY: BreakerPolicy = BreakerPolicy {
    threshold: 5,
    cooldown: Duration::from_secs(60),
};

fn noop() -> JobSpec {
    JobSpec::new("diag.noop", json!({}))
}

fn chrono_secs(secs: i64) -> chrono::Duration {
    chrono::Duration::seconds(secs)
}

/// Claims up to `limit` jobs of `queue` for `worker` at `now`, leased for `lease` seconds.
async fn claim(
    db: &Db,
    queue: &str,
    worker: &str,
    now: chrono::DateTime<chrono::Utc>,
    lease: i64,
    limit: i64,
) -> Vec<i64> {
    let spec = ClaimSpec {
        queue,
        worker,
        now,
        lease_until: now + chrono_secs(lease),
        limit,
        after: None,
    };
    db.report_and_claim(&[], &spec, POLICY)
        .await
        .expect("claim")
        .into_iter()
        .map(|c| c.id)
        .collect()
}

/// Writes `outcome` for job `id` as `worker` at `now`.
async fn report(
    db: &Db,
    queue: &str,
    worker: &str,
    now: chrono::DateTime<chrono::Utc>,
    id: i64,
    outcome: Outcome,
) {
    let spec = ClaimSpec {
        queue,
        worker,
        now,
        lease_until: now,
        limit: 0,
        after: None,
    };
    let reports = [Report {
        id,
        outcome,
        breaker_key: None,
    }];
    let claimed = db
        .report_and_claim(&reports, &spec, POLICY)
        .await
        .expect("report");
    assert!(claimed.is_empty(), "a report with limit 0 claims nothing");
}

fn invalid_fields(err: JobError) -> Vec<&'static str> {
    match err {
        JobError::Invalid(problems) => problems.into_iter().map(|p| p.field).collect(),
        other => panic!("expected JobError::Invalid, got {other:?}"),
    }
}

fn all_jobs(limit: i64) -> JobFilter {
    JobFilter {
        limit,
        ..Default::default()
    }
}

keel_testkit::engine_test!(enqueue_returns_increasing_ids_and_batches_insert_everything);
async fn enqueue_returns_increasing_ids_and_batches_insert_everything(db: TestDb) {
    let env = setup(db).await;
    let db = &env.app.db;
    let mut last = 0;
    for _ in 0..3 {
        let enqueued = env.queue.enqueue(noop()).await.unwrap();
        assert!(!enqueued.deduplicated);
        assert!(
            enqueued.id > last,
            "ids increase: {} after {last}",
            enqueued.id
        );
        last = enqueued.id;
    }
    let row = env.job(last).await;
    assert_eq!(
        (row.queue.as_str(), row.state, row.attempt, row.max_attempts),
        ("default", JobState::Available, 0, 20)
    );
    assert_eq!(row.args, json!({}));

    let specs: Vec<JobSpec> = (0..2500)
        .map(|i| JobSpec::new("diag.noop", json!({ "i": i })).queue("bulk"))
        .collect();
    let out = env.queue.enqueue_many(&specs).await.unwrap();
    assert_eq!(out.len(), 2500);
    assert!(out.iter().all(|e| !e.deduplicated && e.id > last));
    let distinct: std::collections::HashSet<i64> = out.iter().map(|e| e.id).collect();
    assert_eq!(distinct.len(), 2500, "every job has its own id");
    assert_eq!(
        db.scalar("SELECT count(*) FROM jobs WHERE queue = 'bulk'")
            .await,
        2500
    );
    // Each returned id is the job made from the spec at the same position.
    for i in [0usize, 999, 1000, 1001, 2499] {
        let row = env.job(out[i].id).await;
        assert_eq!(
            row.args,
            json!({ "i": i }),
            "id {} belongs to spec {i}",
            out[i].id
        );
    }
    assert_eq!(db.scalar("SELECT count(*) FROM jobs").await, 2503);
}

keel_testkit::engine_test!(invalid_specs_are_refused_naming_each_field);
async fn invalid_specs_are_refused_naming_each_field(db: TestDb) {
    let env = setup(db).await;
    let db = &env.app.db;
    let err = env
        .queue
        .enqueue(JobSpec::new("bad kind", json!({})))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("kind"), "{err}");
    assert_eq!(invalid_fields(err), vec!["kind"]);

    let err = env.queue.enqueue(noop().max_attempts(0)).await.unwrap_err();
    assert_eq!(invalid_fields(err), vec!["max_attempts"]);

    let err = env
        .queue
        .enqueue(
            JobSpec::new("", json!({}))
                .queue("no spaces")
                .max_attempts(1001),
        )
        .await
        .unwrap_err();
    assert_eq!(invalid_fields(err), vec!["kind", "queue", "max_attempts"]);

    // One bad spec refuses the whole batch: nothing is written.
    let batch = vec![noop(), noop().breaker_key(""), noop()];
    let err = env.queue.enqueue_many(&batch).await.unwrap_err();
    assert_eq!(invalid_fields(err), vec!["breaker_key"]);

    let mut tx = env.db.begin().await.unwrap();
    let err = env
        .queue
        .enqueue_in(&mut tx, noop().max_attempts(-1))
        .await
        .unwrap_err();
    assert_eq!(invalid_fields(err), vec!["max_attempts"]);
    tx.rollback().await.unwrap();
    assert_eq!(db.scalar("SELECT count(*) FROM jobs").await, 0);
}

keel_testkit::engine_test!(a_unique_key_returns_the_live_job_until_it_finishes);
async fn a_unique_key_returns_the_live_job_until_it_finishes(db: TestDb) {
    let env = setup(db).await;
    let db = &env.app.db;
    let first = env
        .queue
        .enqueue(noop().queue("uq").unique_key("report:42"))
        .await
        .unwrap();
    assert!(!first.deduplicated);
    let second = env
        .queue
        .enqueue(noop().queue("uq").unique_key("report:42"))
        .await
        .unwrap();
    assert_eq!((second.id, second.deduplicated), (first.id, true));
    // Another key is another job.
    let other = env
        .queue
        .enqueue(noop().queue("uq").unique_key("report:43"))
        .await
        .unwrap();
    assert!(!other.deduplicated && other.id != first.id);
    // Within one batch, the second spec with a key returns the first.
    let batch = env
        .queue
        .enqueue_many(&[noop().unique_key("batch:1"), noop().unique_key("batch:1")])
        .await
        .unwrap();
    assert_eq!((batch[1].id, batch[1].deduplicated), (batch[0].id, true));

    // Running is still live.
    let now = env.clock.now();
    assert_eq!(claim(&env.db, "uq", "w1", now, 60, 1).await, vec![first.id]);
    let while_running = env
        .queue
        .enqueue(noop().queue("uq").unique_key("report:42"))
        .await
        .unwrap();
    assert_eq!(
        (while_running.id, while_running.deduplicated),
        (first.id, true)
    );

    report(
        &env.db,
        "uq",
        "w1",
        env.clock.now(),
        first.id,
        Outcome::Completed,
    )
    .await;
    assert_eq!(env.job(first.id).await.state, JobState::Completed);
    let after = env
        .queue
        .enqueue(noop().queue("uq").unique_key("report:42"))
        .await
        .unwrap();
    assert!(!after.deduplicated, "a finished job frees its key");
    assert!(after.id > first.id);
    assert_eq!(
        db.scalar("SELECT count(*) FROM jobs WHERE unique_key = 'report:42'")
            .await,
        2
    );
}

keel_testkit::engine_test!(enqueue_in_a_transaction_commits_or_rolls_back_with_the_application);
async fn enqueue_in_a_transaction_commits_or_rolls_back_with_the_application(db: TestDb) {
    let env = setup(db).await;
    let db = &env.app.db;
    for commit in [false, true] {
        let user = if commit { "u-commit" } else { "u-rollback" };
        let mut tx = env.db.begin().await.unwrap();
        if let Some(tx) = tx.sqlite() {
            sqlx::query("INSERT INTO users (id, tenant_id, created_at, last_seen_at) VALUES (?1, 't1', 0, 0)")
                    .bind(user)
                    .execute(&mut **tx)
                    .await
                    .unwrap();
        }
        if let Some(tx) = tx.postgres() {
            sqlx::query("INSERT INTO users (id, tenant_id) VALUES ($1, 't1')")
                .bind(user)
                .execute(&mut **tx)
                .await
                .unwrap();
        }
        let job = env
            .queue
            .enqueue_in(
                &mut tx,
                JobSpec::new("app.welcome", json!({ "user": user })),
            )
            .await
            .unwrap();
        assert!(!job.deduplicated);
        // Nobody else sees the job before the commit.
        let seen = env.db.list_jobs(&all_jobs(10)).await.unwrap();
        assert!(
            seen.iter().all(|r| r.id != job.id),
            "an uncommitted job is invisible: {seen:?}"
        );
        if commit {
            tx.commit().await.unwrap();
            let row = env.job(job.id).await;
            assert_eq!(
                (row.kind.as_str(), row.state),
                ("app.welcome", JobState::Available)
            );
            assert_eq!(row.args, json!({ "user": user }));
        } else {
            tx.rollback().await.unwrap();
            assert!(env
                .db
                .list_jobs(&JobFilter {
                    id: Some(job.id),
                    limit: 1,
                    ..Default::default()
                })
                .await
                .unwrap()
                .is_empty());
        }
        let users = db
            .scalar(&format!("SELECT count(*) FROM users WHERE id = '{user}'"))
            .await;
        let jobs = db
            .scalar("SELECT count(*) FROM jobs WHERE kind = 'app.welcome'")
            .await;
        assert_eq!(
            (users, jobs),
            if commit { (1, 1) } else { (0, 0) },
            "user and job share the outcome"
        );
    }
    assert_eq!(db.scalar("SELECT count(*) FROM jobs").await, 1);
}

keel_testkit::engine_test!(the_enqueue_switch_refuses_new_jobs_in_every_process);
async fn the_enqueue_switch_refuses_new_jobs_in_every_process(db: TestDb) {
    let env = setup(db).await;
    let db = &env.app.db;
    // Another process: its own flags cache, warmed while enqueueing is on.
    let other_flags = Flags::new(env.db.clone(), env.clock.clone(), true, true, true);
    let other = Queue::new(env.db.clone(), env.clock.clone(), other_flags);
    other.enqueue(noop()).await.unwrap();

    env.flags.set("enqueue", false, "test").await.unwrap();
    assert!(matches!(
        env.queue.enqueue(noop()).await,
        Err(JobError::EnqueueDisabled)
    ));
    assert!(matches!(
        env.queue.enqueue_many(&[noop(), noop()]).await,
        Err(JobError::EnqueueDisabled)
    ));
    let mut tx = env.db.begin().await.unwrap();
    assert!(matches!(
        env.queue.enqueue_in(&mut tx, noop()).await,
        Err(JobError::EnqueueDisabled)
    ));
    tx.rollback().await.unwrap();
    eventually(
        "the other process refuses enqueues",
        Duration::from_secs(5),
        || async {
            match other.enqueue(noop()).await {
                Err(JobError::EnqueueDisabled) => Some(()),
                Ok(e) => {
                    // Accepted while its cache was fresh; fine within the staleness window.
                    assert!(e.id > 0);
                    None
                }
                Err(e) => panic!("unexpected error {e}"),
            }
        },
    )
    .await;
    let before = db.scalar("SELECT count(*) FROM jobs").await;

    env.flags.set("enqueue", true, "test").await.unwrap();
    env.queue.enqueue(noop()).await.unwrap();
    eventually(
        "the other process accepts enqueues again",
        Duration::from_secs(5),
        || async { other.enqueue(noop()).await.ok() },
    )
    .await;
    assert!(db.scalar("SELECT count(*) FROM jobs").await >= before + 2);

    assert!(matches!(
        env.flags.set("bogus", false, "test").await,
        Err(FlagError::Unknown(_))
    ));
    let err = env
        .queue
        .set_paused("bad name", true, "test")
        .await
        .unwrap_err();
    assert!(
        matches!(err, JobError::Flag(FlagError::Unknown(_))),
        "{err:?}"
    );
}
