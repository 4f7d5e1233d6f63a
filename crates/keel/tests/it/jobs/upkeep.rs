//! Pruning finished jobs and counting jobs per queue and state.

use super::*;

keel_testkit::engine_test!(prune_deletes_only_finished_jobs_past_retention);
async fn prune_deletes_only_finished_jobs_past_retention(db: TestDb) {
    let env = setup(db).await;
    let now = env.clock.now();
    let old = now - chrono_secs(48 * 3600);
    let recent = now - chrono_secs(3600);
    let insert = |at: chrono::DateTime<chrono::Utc>, queue: &'static str| {
        let db = env.db.clone();
        async move {
            let job = noop().queue(queue).validate().unwrap();
            db.insert_jobs(at, &[job]).await.unwrap()[0].id
        }
    };
    // Completed two days ago, and an hour ago.
    let old_done = insert(old, "p-old").await;
    claim(&env.db, "p-old", "w", old, 60, 1).await;
    report(&env.db, "p-old", "w", old, old_done, Outcome::Completed).await;
    let recent_done = insert(recent, "p-recent").await;
    claim(&env.db, "p-recent", "w", recent, 60, 1).await;
    report(
        &env.db,
        "p-recent",
        "w",
        recent,
        recent_done,
        Outcome::Completed,
    )
    .await;
    // Running since two days ago (its lease renewed), waiting since two days ago.
    let running = insert(old, "p-running").await;
    claim(&env.db, "p-running", "w", old, 3 * 24 * 3600, 1).await;
    let waiting = insert(old, "p-waiting").await;
    // Cancelled and discarded two days ago.
    let cancelled = insert(old, "p-cancelled").await;
    let mut tx = env.db.begin().await.unwrap();
    assert_eq!(tx.drain_queue("p-cancelled", old).await.unwrap(), 1);
    tx.commit().await.unwrap();
    let discarded = insert(old, "p-discarded").await;
    claim(&env.db, "p-discarded", "w", old, 60, 1).await;
    report(
        &env.db,
        "p-discarded",
        "w",
        old,
        discarded,
        Outcome::Discard {
            error: "boom".into(),
        },
    )
    .await;
    assert_eq!(env.job(old_done).await.state, JobState::Completed);
    assert_eq!(env.job(discarded).await.state, JobState::Discarded);

    let retention = chrono_secs(24 * 3600);
    let pruned = env
        .db
        .prune_jobs(now - retention, now - chrono_secs(7 * 24 * 3600))
        .await
        .unwrap();
    assert_eq!(pruned, 2, "the old completed and the old cancelled job");
    let left: Vec<i64> = env
        .db
        .list_jobs(&all_jobs(100))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    for id in [recent_done, running, waiting, discarded] {
        assert!(left.contains(&id), "job {id} is kept: {left:?}");
    }
    for id in [old_done, cancelled] {
        assert!(!left.contains(&id), "job {id} is pruned: {left:?}");
    }
    // Discarded jobs go after their own, longer retention.
    assert_eq!(env.db.prune_jobs(now - retention, now).await.unwrap(), 1);
    assert_eq!(env.job(running).await.state, JobState::Running);
}

keel_testkit::engine_test!(counts_group_by_queue_and_state);
async fn counts_group_by_queue_and_state(db: TestDb) {
    let env = setup(db).await;
    for _ in 0..3 {
        env.enqueue(noop().queue("c1")).await;
    }
    env.enqueue(
        noop()
            .queue("c1")
            .run_at(env.clock.now() + chrono_secs(600)),
    )
    .await;
    let run = env.enqueue(noop().queue("c2")).await;
    env.enqueue(noop().queue("c2")).await;
    claim(&env.db, "c2", "w", env.clock.now(), 60, 1).await;
    assert_eq!(env.job(run).await.state, JobState::Running);
    env.enqueue(noop().queue("c3")).await;
    env.queue.drain("c3", "test").await.unwrap();

    let counts = env.db.job_counts().await.unwrap();
    let get = |q: &str, s: JobState| counts.get(q).and_then(|m| m.get(&s)).copied().unwrap_or(0);
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert_eq!(get("c1", JobState::Available), 3);
    assert_eq!(get("c1", JobState::Scheduled), 1);
    assert_eq!(get("c2", JobState::Running), 1);
    assert_eq!(get("c2", JobState::Available), 1);
    assert_eq!(get("c3", JobState::Cancelled), 1);
    let total: i64 = counts.values().flat_map(|m| m.values()).sum();
    assert_eq!(total, 7);
}
