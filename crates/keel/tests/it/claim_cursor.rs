//! A claim with a cursor skips what sorts before it; the next claim without one finds it.

use crate::jobs_support;

use chrono::Duration;
use jobs_support::setup;
use keel::jobs::JobSpec;
use keel::store::jobs::{BreakerPolicy, ClaimCursor, ClaimSpec, Claimed};
use keel::store::Db;
use keel_testkit::TestDb;

const POLICY: BreakerPolicy = BreakerPolicy {
    threshold: 5,
    cooldown: std::time::Duration::from_secs(60),
};

async fn claim(db: &Db, limit: i64, after: Option<ClaimCursor>) -> Vec<Claimed> {
    let now = chrono::Utc::now() + Duration::seconds(1);
    let spec = ClaimSpec {
        queue: "cursor",
        worker: "w",
        now,
        lease_until: now + Duration::seconds(60),
        limit,
        after,
    };
    db.report_and_claim(&[], &spec, POLICY)
        .await
        .expect("claim")
}

keel_testkit::engine_test!(a_job_sorting_before_the_cursor_is_found_without_it);
async fn a_job_sorting_before_the_cursor_is_found_without_it(db: TestDb) {
    let env = setup(db).await;
    let db = &env.app.db;
    for _ in 0..6 {
        env.enqueue(JobSpec::new("diag.noop", serde_json::json!({})).queue("cursor"))
            .await;
    }
    let first = claim(&env.db, 3, None).await;
    assert_eq!(first.len(), 3);
    let last = first.last().unwrap();
    let cursor = ClaimCursor {
        priority: last.priority,
        run_at: last.run_at,
        id: last.id,
    };
    let urgent = env
        .enqueue(
            JobSpec::new("diag.noop", serde_json::json!({}))
                .queue("cursor")
                .priority(-5),
        )
        .await;

    let with_cursor = claim(&env.db, 2, Some(cursor)).await;
    assert_eq!(with_cursor.len(), 2);
    assert!(
        with_cursor.iter().all(|c| c.id > last.id),
        "claimed after the cursor: {with_cursor:?}"
    );
    if db.is_postgres() {
        assert!(
            with_cursor.iter().all(|c| c.id != urgent),
            "the cursor claim skips what sorts before it"
        );
    }
    let without = claim(&env.db, 10, None).await;
    assert!(
        without.iter().any(|c| c.id == urgent) || with_cursor.iter().any(|c| c.id == urgent),
        "a claim without a cursor finds the job that sorts before it"
    );
    let all: std::collections::BTreeSet<i64> = first
        .iter()
        .chain(&with_cursor)
        .chain(&without)
        .map(|c| c.id)
        .collect();
    assert_eq!(all.len(), 7, "every job claimed exactly once");
}
