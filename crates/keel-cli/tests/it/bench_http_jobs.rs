//! `keel bench http-jobs` runs Rust and HTTP no-op jobs on the configured database, on either
//! engine, delivers every HTTP job to its receiver and leaves no job behind.

use crate::common;

use common::keel;
use keel_testkit::TestDb;

keel_testkit::engine_test!(bench_http_jobs_measures_both_kinds_and_cleans_up);
async fn bench_http_jobs_measures_both_kinds_and_cleans_up(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let env = [("DATABASE_URL", db.url())];
    keel(dir.path(), &env, &["migrate", "up"]).assert_code(0);
    let args = [
        "--json",
        "bench",
        "http-jobs",
        "--jobs",
        "100",
        "--concurrency",
        "10",
        "--rounds",
        "2",
    ];
    let run = keel(dir.path(), &env, &args);
    run.assert_code(0);
    let out = run.json();
    for key in ["rust_jobs_per_s", "http_jobs_per_s", "http_over_rust"] {
        let value = out[key].as_f64();
        assert!(
            value.is_some_and(|v| v > 0.0 && v.is_finite()),
            "{key}: {out}"
        );
    }
    assert_eq!(out["rounds"].as_array().map(Vec::len), Some(2), "{out}");
    assert_eq!(out["deliveries"], 200, "one delivery per HTTP job: {out}");
    let left = db
        .scalar("SELECT count(*) FROM jobs WHERE queue LIKE 'bench-%'")
        .await;
    assert_eq!(left, 0, "the benchmark left jobs behind");
    let bad = keel(dir.path(), &env, &["bench", "http-jobs", "--jobs", "0"]);
    bad.assert_code(2);
}
