//! Operator actions (pause, drain, retry, discard) and their audit rows, and unique keys under
//! concurrent enqueues and retries.

use super::*;

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
