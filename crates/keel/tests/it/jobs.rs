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

mod leases;

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

keel_testkit::engine_test!(operator_actions_change_only_their_targets_and_are_audited);
async fn operator_actions_change_only_their_targets_and_are_audited(db: TestDb) {
    let env = setup(db).await;
    let waiting = env.enqueue(noop().queue("ops")).await;
    let later = env
        .enqueue(
            noop()
                .queue("ops")
                .run_at(env.clock.now() + chrono_secs(600)),
        )
        .await;
    let elsewhere = env.enqueue(noop().queue("ops-other")).await;

    // Discard one available job.
    let ids = env
        .queue
        .discard(
            &JobFilter {
                id: Some(waiting),
                limit: 10,
                ..Default::default()
            },
            "alice",
        )
        .await
        .unwrap();
    assert_eq!(ids, vec![waiting]);
    let row = env.job(waiting).await;
    assert_eq!(row.state, JobState::Discarded);
    assert!(
        row.finished_at.is_some() && row.last_error.is_some(),
        "{row:?}"
    );
    // A finished job is not waiting: nothing to discard.
    let done = env.enqueue(noop().queue("ops-done")).await;
    assert_eq!(
        claim(&env.db, "ops-done", "w", env.clock.now(), 60, 1).await,
        vec![done]
    );
    report(
        &env.db,
        "ops-done",
        "w",
        env.clock.now(),
        done,
        Outcome::Completed,
    )
    .await;
    let none = env
        .queue
        .discard(
            &JobFilter {
                id: Some(done),
                limit: 10,
                ..Default::default()
            },
            "eve",
        )
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(env.job(done).await.state, JobState::Completed);

    // Retry brings the discarded job back.
    let ids = env
        .queue
        .retry(
            &JobFilter {
                id: Some(waiting),
                limit: 10,
                ..Default::default()
            },
            "bob",
        )
        .await
        .unwrap();
    assert_eq!(ids, vec![waiting]);
    let row = env.job(waiting).await;
    assert_eq!((row.state, row.finished_at), (JobState::Available, None));
    // Retrying a live job changes nothing.
    assert!(env
        .queue
        .retry(
            &JobFilter {
                id: Some(elsewhere),
                limit: 10,
                ..Default::default()
            },
            "eve"
        )
        .await
        .unwrap()
        .is_empty());

    // Drain cancels every waiting job of its queue, and only of it.
    assert_eq!(env.queue.drain("ops", "carol").await.unwrap(), 2);
    for id in [waiting, later] {
        let row = env.job(id).await;
        assert_eq!(row.state, JobState::Cancelled, "{row:?}");
        assert!(row.finished_at.is_some());
    }
    assert_eq!(env.job(elsewhere).await.state, JobState::Available);
    assert_eq!(env.job(done).await.state, JobState::Completed);

    env.queue
        .set_paused("ops-other", true, "dave")
        .await
        .unwrap();

    let audit = env.db.audit_rows(None, 10).await.unwrap();
    let find = |action: &str, actor: &str| {
        audit
            .iter()
            .find(|r| r.action == action && r.actor == actor)
            .unwrap_or_else(|| panic!("no {action} audit row by {actor}: {audit:#?}"))
            .clone()
    };
    let discard = find("job.discard", "alice");
    assert_eq!(
        discard.target.as_deref(),
        Some(format!("job:{waiting}").as_str())
    );
    assert_eq!(discard.metadata["ids"], json!([waiting]));
    let retry = find("job.retry", "bob");
    assert_eq!(
        retry.target.as_deref(),
        Some(format!("job:{waiting}").as_str())
    );
    let drain = find("queue.drain", "carol");
    assert_eq!(drain.target.as_deref(), Some("queue:ops"));
    assert_eq!(drain.metadata["cancelled"], json!(2));
    let flag = find("flag.set", "dave");
    assert_eq!(flag.target.as_deref(), Some("flag:queue:ops-other"));
    assert_eq!(flag.metadata["enabled"], json!(false));
    assert_eq!(audit[0].action, "flag.set", "newest first: {audit:#?}");
}

keel_testkit::engine_test!(concurrent_enqueues_of_one_key_make_one_job);
async fn concurrent_enqueues_of_one_key_make_one_job(db: TestDb) {
    let env = setup(db).await;
    let db = &env.app.db;
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let queue = env.queue.clone();
            tokio::spawn(async move { queue.enqueue(noop().unique_key("race")).await.unwrap() })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    assert_eq!(out.iter().filter(|e| !e.deduplicated).count(), 1, "{out:?}");
    assert!(out.iter().all(|e| e.id == out[0].id), "{out:?}");
    assert_eq!(db.scalar("SELECT count(*) FROM jobs").await, 1);
}

keel_testkit::engine_test!(retry_never_makes_a_second_live_job_with_one_unique_key);
async fn retry_never_makes_a_second_live_job_with_one_unique_key(db: TestDb) {
    let env = setup(db).await;
    let db = &env.app.db;
    let in_queue = |q: &str| JobFilter {
        queue: Some(q.into()),
        limit: 100,
        ..Default::default()
    };
    // A keyed job was discarded and its key enqueued again; a keyless job was discarded too.
    let old = env.enqueue(noop().queue("rk").unique_key("k")).await;
    let plain = env.enqueue(noop().queue("rk")).await;
    env.queue.discard(&in_queue("rk"), "test").await.unwrap();
    let live = env.enqueue(noop().queue("rk").unique_key("k")).await;
    assert_ne!(live, old);
    // Retrying the whole queue retries what it can and leaves the key with its live job.
    let retried = env
        .queue
        .retry(&in_queue("rk"), "test")
        .await
        .expect("retry of the queue succeeds");
    assert_eq!(retried, vec![plain]);
    assert_eq!(env.job(old).await.state, JobState::Discarded);
    assert_eq!(env.job(plain).await.state, JobState::Available);
    assert_eq!(env.job(live).await.state, JobState::Available);

    // Two discarded jobs share a key: retrying both brings back one.
    let first = env.enqueue(noop().queue("rk2").unique_key("k2")).await;
    env.queue.discard(&in_queue("rk2"), "test").await.unwrap();
    let second = env.enqueue(noop().queue("rk2").unique_key("k2")).await;
    env.queue.discard(&in_queue("rk2"), "test").await.unwrap();
    let retried = env
        .queue
        .retry(&in_queue("rk2"), "test")
        .await
        .expect("retry of the queue succeeds");
    assert_eq!(retried.len(), 1, "{retried:?}");
    assert!(retried[0] == first || retried[0] == second);
    assert_eq!(
        db.scalar("SELECT count(*) FROM jobs WHERE unique_key = 'k2' AND state = 'available'")
            .await,
        1
    );
}

keel_testkit::engine_test!(retry_and_discard_touch_only_the_states_they_name);
async fn retry_and_discard_touch_only_the_states_they_name(db: TestDb) {
    let env = setup(db).await;
    let later = env.clock.now() + chrono_secs(3600);
    let cancelled = env.enqueue(noop().queue("rs")).await;
    env.queue.drain("rs", "test").await.unwrap();
    let discarded = env.enqueue(noop().queue("rs")).await;
    let by_id = |id: i64| JobFilter {
        id: Some(id),
        limit: 1,
        ..Default::default()
    };
    env.queue.discard(&by_id(discarded), "test").await.unwrap();
    let retryable = env.enqueue(noop().queue("rs")).await;
    assert_eq!(
        claim(&env.db, "rs", "w", env.clock.now(), 60, 1).await,
        vec![retryable]
    );
    let retry = Outcome::Retry {
        run_at: later,
        error: "boom".into(),
    };
    report(&env.db, "rs", "w", env.clock.now(), retryable, retry).await;
    let waiting = env.enqueue(noop().queue("rs")).await;
    let states = |states: Vec<JobState>| JobFilter {
        queue: Some("rs".into()),
        states,
        limit: 100,
        ..Default::default()
    };
    let failed = states(vec![JobState::Retryable, JobState::Discarded]);

    // The store itself: a retry of the failed states leaves the cancelled job alone.
    let mut tx = env.db.begin().await.unwrap();
    let mut retried = tx.retry_jobs(&failed, env.clock.now()).await.unwrap();
    tx.commit().await.unwrap();
    retried.sort();
    assert_eq!(retried, vec![discarded, retryable]);
    assert_eq!(env.job(cancelled).await.state, JobState::Cancelled);
    assert_eq!(env.job(discarded).await.state, JobState::Available);
    assert_eq!(env.job(retryable).await.state, JobState::Available);

    // States an action does not apply to select nothing; no state named means all it applies to.
    let mut tx = env.db.begin().await.unwrap();
    let none = tx
        .retry_jobs(&states(vec![JobState::Available]), env.clock.now())
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
    let none = tx
        .discard_jobs(&states(vec![JobState::Cancelled]), env.clock.now())
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
    tx.commit().await.unwrap();
    assert_eq!(env.job(waiting).await.state, JobState::Available);

    // Through the queue: counts say what an action would touch, then it touches just that.
    use keel::jobs::JobAction;
    assert_eq!(
        env.queue
            .count_for(JobAction::Discard, &states(vec![]), 1000)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        env.queue
            .count_for(JobAction::Retry, &states(vec![]), 1000)
            .await
            .unwrap(),
        1,
        "only the cancelled job"
    );
    assert_eq!(
        env.queue
            .count_for(JobAction::Discard, &states(vec![]), 2)
            .await
            .unwrap(),
        2,
        "counting stops at the cap"
    );
    let discarded_now = env
        .queue
        .discard(&states(vec![JobState::Available]), "ann")
        .await
        .unwrap();
    assert_eq!(discarded_now.len(), 3);
    assert_eq!(env.job(cancelled).await.state, JobState::Cancelled);
    let retried = env
        .queue
        .retry(
            &states(vec![JobState::Retryable, JobState::Discarded]),
            "ann",
        )
        .await
        .unwrap();
    assert_eq!(retried.len(), 3);
    assert_eq!(env.job(cancelled).await.state, JobState::Cancelled);
    let audit = env.db.audit_rows(Some("queue:rs"), 10).await.unwrap();
    let row = audit
        .iter()
        .find(|r| r.action == "job.retry" && r.actor == "ann")
        .expect("the retry's audit row");
    assert_eq!(
        row.metadata["filter"]["states"],
        json!(["retryable", "discarded"])
    );

    // A selection: only the jobs whose state allows the action change.
    let changed = env
        .queue
        .act_on_selection(JobAction::Retry, &[cancelled, waiting], "sel")
        .await
        .unwrap();
    assert_eq!(changed, vec![cancelled]);
    let audit = env.db.audit_rows(None, 20).await.unwrap();
    let row = audit.iter().find(|r| r.actor == "sel").expect("audited");
    assert_eq!(
        (
            row.action.as_str(),
            &row.metadata["ids"],
            &row.metadata["selected"]
        ),
        ("job.retry", &json!([cancelled]), &json!(2))
    );
}
