//! Operator commands that act on many jobs need them named.

use crate::common;

use keel_testkit::TestDb;

#[test]
fn retry_and_discard_need_a_filter_or_all() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let env = [("DATABASE_URL", db.url())];
    common::keel(dir.path(), &env, &["migrate", "up"]).assert_code(0);
    common::keel(
        dir.path(),
        &env,
        &["queue", "enqueue", "diag.noop", "--count", "3"],
    )
    .assert_code(0);
    for verb in ["retry", "discard"] {
        let run = common::keel(dir.path(), &env, &["queue", verb]);
        run.assert_code(2);
        assert!(run.stderr.contains("--all"), "{}", run.describe());
    }
    let run = common::keel(dir.path(), &env, &["--json", "queue", "discard", "--all"]);
    run.assert_code(0);
    assert_eq!(run.json()["discarded"].as_array().map(Vec::len), Some(3));
}
