//! Leases: a dead worker's jobs come back or are discarded; a live worker's stay its own.

use super::*;

keel_testkit::engine_test!(an_expired_lease_returns_the_job_or_discards_it_without_attempts_left);
async fn an_expired_lease_returns_the_job_or_discards_it_without_attempts_left(db: TestDb) {
    let env = setup(db).await;
    let retried = env.enqueue(noop().queue("lease").max_attempts(3)).await;
    let last = env
        .enqueue(noop().queue("lease-last").max_attempts(1))
        .await;
    let now = env.clock.now();
    // A process claims both and dies.
    assert_eq!(
        claim(&env.db, "lease", "dead-worker", now, 1, 1).await,
        vec![retried]
    );
    assert_eq!(
        claim(&env.db, "lease-last", "dead-worker", now, 1, 1).await,
        vec![last]
    );
    assert_eq!(env.job(retried).await.state, JobState::Running);

    assert_eq!(
        env.db.rescue_jobs(now, None).await.unwrap(),
        0,
        "leases still valid"
    );
    assert_eq!(
        env.db
            .rescue_jobs(now + chrono_secs(2), None)
            .await
            .unwrap(),
        2
    );
    let row = env.job(retried).await;
    assert_eq!(
        (row.state, row.attempt),
        (JobState::Available, 1),
        "{row:?}"
    );
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("lease"),
        "{row:?}"
    );
    assert!(row.finished_at.is_none());
    let row = env.job(last).await;
    assert_eq!(
        (row.state, row.attempt),
        (JobState::Discarded, 1),
        "{row:?}"
    );
    assert!(
        row.finished_at.is_some() && row.last_error.is_some(),
        "{row:?}"
    );

    // Another worker takes the rescued job; the dead worker's late report changes nothing.
    let later = now + chrono_secs(3);
    assert_eq!(
        claim(&env.db, "lease", "w2", later, 60, 1).await,
        vec![retried]
    );
    report(
        &env.db,
        "lease",
        "dead-worker",
        later,
        retried,
        Outcome::Completed,
    )
    .await;
    let row = env.job(retried).await;
    assert_eq!((row.state, row.attempt), (JobState::Running, 2), "{row:?}");
    report(&env.db, "lease", "w2", later, retried, Outcome::Completed).await;
    assert_eq!(env.job(retried).await.state, JobState::Completed);
    assert_eq!(
        env.db
            .rescue_jobs(later + chrono_secs(3600), None)
            .await
            .unwrap(),
        0
    );
}

keel_testkit::engine_test!(a_clock_jump_does_not_take_a_live_workers_jobs);
async fn a_clock_jump_does_not_take_a_live_workers_jobs(db: TestDb) {
    let env = setup(db).await;
    let id = env.enqueue(noop().queue("jump").max_attempts(3)).await;
    let now = env.clock.now();
    env.db
        .renew_worker_lease("alive", now + chrono_secs(30))
        .await
        .unwrap();
    assert_eq!(claim(&env.db, "jump", "alive", now, 30, 1).await, vec![id]);

    // The clock jumps an hour (an NTP step, a resumed VM) before the next heartbeat: to the
    // worker itself, its lease and its job are still its own.
    let jumped = now + chrono_secs(3600);
    assert_eq!(
        env.db
            .rescue_dead_workers(jumped, Some("alive"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(env.db.rescue_jobs(jumped, Some("alive")).await.unwrap(), 0);
    let row = env.job(id).await;
    assert_eq!((row.state, row.attempt), (JobState::Running, 1), "{row:?}");
    report(&env.db, "jump", "alive", jumped, id, Outcome::Completed).await;
    let row = env.job(id).await;
    assert_eq!(
        (row.state, row.attempt),
        (JobState::Completed, 1),
        "{row:?}"
    );

    // Another process seeing the same expired lease takes the jobs of the silent worker.
    let other = env.enqueue(noop().queue("jump").max_attempts(3)).await;
    assert_eq!(
        claim(&env.db, "jump", "alive", jumped, 30, 1).await,
        vec![other]
    );
    let later = jumped + chrono_secs(3600);
    assert_eq!(env.db.rescue_jobs(later, Some("another")).await.unwrap(), 1);
    assert_eq!(env.job(other).await.state, JobState::Available);
}
