//! The worker's pools on Postgres: the runners' claims are planned once per connection and never
//! by scanning the table, so a plan made while the table was empty still uses the indexes once it
//! has grown; the jobs' own statements keep the server's planning.

use super::*;
use jobs_support::{config, DEADLINE};
use keel::jobs::Registry;

async fn setting(db: &Db, name: &str) -> String {
    let Db::Postgres(pool) = db else {
        panic!("a Postgres pool");
    };
    sqlx::query_scalar::<_, String>(&format!("SHOW {name}"))
        .fetch_one(&**pool)
        .await
        .expect("SHOW")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_are_planned_once_and_only_through_indexes() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let env = setup(db).await;
    let database = &env.settings.database;
    let claims = env.db.claims_pool(database, 1).expect("claims pool");
    assert_eq!(
        setting(&claims, "plan_cache_mode").await,
        "force_generic_plan"
    );
    assert_eq!(setting(&claims, "enable_seqscan").await, "off");
    assert_eq!(setting(&claims, "synchronous_commit").await, "off");

    let work = env.db.worker_pool(database, 1).expect("worker pool");
    assert_eq!(setting(&work, "plan_cache_mode").await, "auto");
    assert_eq!(setting(&work, "enable_seqscan").await, "on");
    assert_eq!(setting(&work, "synchronous_commit").await, "off");
}

keel_testkit::engine_test!(a_worker_started_on_an_empty_table_drains_a_burst_enqueued_later);
async fn a_worker_started_on_an_empty_table_drains_a_burst_enqueued_later(db: TestDb) {
    let env = setup(db).await;
    let mut registry = Registry::default();
    registry.register_fn("burst.noop", |_, _| async { Ok(()) });
    let running = env.start_worker(registry, config(&[("burst", 20)]));
    // The runners have claimed (and planned) on the empty table before the burst arrives.
    let probe = env
        .enqueue(JobSpec::new("burst.noop", json!({})).queue("burst"))
        .await;
    env.wait_state(probe, JobState::Completed).await;
    let burst = vec![JobSpec::new("burst.noop", json!({})).queue("burst"); 2_000];
    env.queue
        .enqueue_many(&burst)
        .await
        .expect("enqueue the burst");
    let completed = JobFilter {
        queue: Some("burst".into()),
        states: vec![JobState::Completed],
        ..Default::default()
    };
    eventually("the burst drained", DEADLINE, || async {
        env.queue.count(&completed, 10_000).await.ok() == Some(2_001)
    })
    .await;
    running.stop().await;
}
