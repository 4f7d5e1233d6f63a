//! `keel migrate up | down --to VERSION | status | verify [--dry-run]` on both engines (SPEC §1):
//! the plan, the round trip, drift detection and tampering.

use crate::common;

use common::{keel, Run};
use keel_testkit::TestDb;
use serde_json::Value;

/// Runs `keel migrate ARGS` against `db` with nothing else configured.
fn migrate(db: &TestDb, args: &[&str]) -> Run {
    let scratch;
    let dir = match db.dir() {
        Some(dir) => dir,
        None => {
            scratch = tempfile::tempdir().expect("temporary directory");
            scratch.path()
        }
    };
    let mut full = vec!["migrate"];
    full.extend_from_slice(args);
    keel(dir, &[("DATABASE_URL", db.url())], &full)
}

/// `(version, state)` of every migration, from `keel migrate status --json`.
fn states(db: &TestDb) -> Vec<(i64, String)> {
    let run = migrate(db, &["status", "--json"]);
    let report = run.json();
    report["migrations"]
        .as_array()
        .unwrap_or_else(|| panic!("migrations must be an array: {report}"))
        .iter()
        .map(|m| {
            let version = m["version"].as_i64().expect("version");
            let state = m["state"].as_str().expect("state").to_string();
            assert!(m["name"].is_string(), "{m}");
            if state == "applied" {
                assert!(m["applied_at"].is_string(), "applied_at when applied: {m}");
            } else if state == "pending" {
                assert!(m["applied_at"].is_null(), "no applied_at when pending: {m}");
            }
            (version, state)
        })
        .collect()
}

fn all_in(db: &TestDb, state: &str) -> bool {
    let states = states(db);
    !states.is_empty() && states.iter().all(|(_, s)| s == state)
}

/// The text status line of migration 0001.
fn line_0001(run: &Run) -> String {
    run.stdout
        .lines()
        .find(|l| l.starts_with("0001"))
        .unwrap_or_else(|| panic!("no line for 0001:\n{}", run.describe()))
        .to_string()
}

async fn table_exists(db: &TestDb, name: &str) -> bool {
    let sql = if db.is_postgres() {
        format!(
            "SELECT count(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = '{name}'"
        )
    } else {
        format!("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '{name}'")
    };
    db.scalar(&sql).await > 0
}

fn assert_no_crash(run: &Run) {
    assert!(!run.output().contains("panicked"), "{}", run.describe());
}

keel_testkit::engine_test!(status_lists_pending_then_applied);
async fn status_lists_pending_then_applied(db: TestDb) {
    let before = migrate(&db, &["status"]);
    before.assert_code(0);
    let line = line_0001(&before);
    assert!(line.contains("pending"), "{}", before.describe());
    assert!(line.contains("0001_core"), "{}", before.describe());
    assert!(all_in(&db, "pending"));

    let up = migrate(&db, &["up"]);
    up.assert_code(0);
    assert!(up.stdout.contains("applied 0001"), "{}", up.describe());

    let after = migrate(&db, &["status"]);
    after.assert_code(0);
    let line = line_0001(&after);
    assert!(line.contains("applied"), "{}", after.describe());
    assert!(line.contains("UTC"), "applied lines carry the time: {line}");
    assert!(all_in(&db, "applied"));
    assert!(table_exists(&db, "audit_log").await);
    assert!(table_exists(&db, "users").await);
}

keel_testkit::engine_test!(up_twice_applies_nothing_the_second_time);
async fn up_twice_applies_nothing_the_second_time(db: TestDb) {
    migrate(&db, &["up"]).assert_code(0);
    let again = migrate(&db, &["up"]);
    again.assert_code(0);
    assert!(
        again.stdout.contains("nothing to apply"),
        "{}",
        again.describe()
    );
    let json = migrate(&db, &["up", "--json"]);
    json.assert_code(0);
    let report = json.json();
    assert_eq!(report["migrations"], serde_json::json!([]), "{report}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM keel_migrations").await,
        states(&db).len() as i64
    );
}

keel_testkit::engine_test!(dry_run_prints_the_plan_and_changes_nothing);
async fn dry_run_prints_the_plan_and_changes_nothing(db: TestDb) {
    let dry = migrate(&db, &["up", "--dry-run"]);
    dry.assert_code(0);
    assert!(
        dry.stdout.contains("would apply 0001 0001_core"),
        "{}",
        dry.describe()
    );
    assert!(all_in(&db, "pending"), "a dry run applied something");
    assert!(!table_exists(&db, "audit_log").await);
    assert!(!table_exists(&db, "users").await);

    let json = migrate(&db, &["up", "--dry-run", "--json"]);
    json.assert_code(0);
    let report = json.json();
    assert_eq!(report["dry_run"], true, "{report}");
    assert_eq!(report["migrations"][0]["version"], 1, "{report}");
    assert!(all_in(&db, "pending"));

    // The same for down: the plan, no change.
    migrate(&db, &["up"]).assert_code(0);
    let dry_down = migrate(&db, &["down", "--to", "0", "--dry-run"]);
    dry_down.assert_code(0);
    assert!(
        dry_down.stdout.contains("would revert 0001"),
        "{}",
        dry_down.describe()
    );
    assert!(all_in(&db, "applied"));
    assert!(table_exists(&db, "audit_log").await);
}

keel_testkit::engine_test!(down_to_zero_and_up_round_trip);
async fn down_to_zero_and_up_round_trip(db: TestDb) {
    migrate(&db, &["up"]).assert_code(0);
    migrate(&db, &["verify"]).assert_code(0);

    let down = migrate(&db, &["down", "--to", "0"]);
    down.assert_code(0);
    assert!(down.stdout.contains("reverted 0001"), "{}", down.describe());
    assert!(all_in(&db, "pending"));
    assert!(!table_exists(&db, "audit_log").await);
    assert!(!table_exists(&db, "users").await);

    // Nothing applied: verify reports the pending migration.
    let pending = migrate(&db, &["verify"]);
    pending.assert_code(1);
    assert!(
        pending.stdout.contains("pending migration 0001"),
        "{}",
        pending.describe()
    );

    let again = migrate(&db, &["down", "--to", "0"]);
    again.assert_code(0);
    assert!(
        again.stdout.contains("nothing to revert"),
        "{}",
        again.describe()
    );

    migrate(&db, &["up"]).assert_code(0);
    assert!(all_in(&db, "applied"));
    let verify = migrate(&db, &["verify"]);
    verify.assert_code(0);
    assert!(verify.stdout.contains("schema ok"), "{}", verify.describe());
    let json = migrate(&db, &["verify", "--json"]);
    json.assert_code(0);
    assert_eq!(json.json()["ok"], true, "{}", json.describe());
}

keel_testkit::engine_test!(verify_names_a_dropped_table);
async fn verify_names_a_dropped_table(db: TestDb) {
    migrate(&db, &["up"]).assert_code(0);
    db.execute("DROP TABLE audit_log").await;

    let verify = migrate(&db, &["verify"]);
    verify.assert_code(1);
    assert_no_crash(&verify);
    assert!(
        verify.stdout.contains("table audit_log"),
        "{}",
        verify.describe()
    );
    assert!(
        !verify.stdout.contains("table users"),
        "users is still there:\n{}",
        verify.describe()
    );
    // `--dry-run` is accepted by verify and changes nothing either way.
    migrate(&db, &["verify", "--dry-run"]).assert_code(1);

    let json = migrate(&db, &["verify", "--json"]);
    json.assert_code(1);
    let report = json.json();
    assert_eq!(report["ok"], false, "{report}");
    let missing: Vec<&str> = report["report"]["missing"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(missing.contains(&"table audit_log"), "{report}");
    assert!(
        !table_exists(&db, "audit_log").await,
        "verify must not repair"
    );
}

keel_testkit::engine_test!(down_to_a_missing_version_fails_clearly);
async fn down_to_a_missing_version_fails_clearly(db: TestDb) {
    migrate(&db, &["up"]).assert_code(0);
    let down = migrate(&db, &["down", "--to", "99"]);
    assert_ne!(down.code, Some(0), "{}", down.describe());
    assert_no_crash(&down);
    assert!(down.stderr.contains("99"), "{}", down.describe());
    assert!(down.stderr.contains("no migration"), "{}", down.describe());
    assert!(all_in(&db, "applied"), "a failed down must change nothing");
    assert!(table_exists(&db, "audit_log").await);

    let negative = migrate(&db, &["down", "--to=-1"]);
    assert_ne!(negative.code, Some(0), "{}", negative.describe());
    assert!(all_in(&db, "applied"));
}

keel_testkit::engine_test!(a_changed_migration_is_refused);
async fn a_changed_migration_is_refused(db: TestDb) {
    migrate(&db, &["up"]).assert_code(0);
    db.execute("UPDATE keel_migrations SET checksum = 'x' WHERE version = 1")
        .await;

    let up = migrate(&db, &["up"]);
    up.assert_code(1);
    assert_no_crash(&up);
    assert!(up.stderr.contains("0001_core"), "{}", up.describe());
    assert!(
        up.stderr.contains("changed after it was applied"),
        "{}",
        up.describe()
    );

    let dry = migrate(&db, &["up", "--dry-run"]);
    dry.assert_code(1);
    assert!(dry.stderr.contains("changed"), "{}", dry.describe());

    let status = migrate(&db, &["status"]);
    status.assert_code(1);
    assert!(
        line_0001(&status).contains("MODIFIED"),
        "{}",
        status.describe()
    );
    let json = migrate(&db, &["status", "--json"]);
    json.assert_code(1);
    assert_eq!(
        json.json()["migrations"][0]["state"],
        "modified",
        "{}",
        json.describe()
    );

    let verify = migrate(&db, &["verify"]);
    verify.assert_code(1);
    assert!(
        verify.stdout.contains("migration 0001 was changed"),
        "{}",
        verify.describe()
    );
}

keel_testkit::engine_test!(a_migration_unknown_to_this_build_is_refused);
async fn a_migration_unknown_to_this_build_is_refused(db: TestDb) {
    migrate(&db, &["up"]).assert_code(0);
    let insert = if db.is_postgres() {
        "INSERT INTO keel_migrations (version, name, checksum) VALUES (9999, '9999_future', 'abc')"
    } else {
        "INSERT INTO keel_migrations (version, name, checksum, applied_at) \
             VALUES (9999, '9999_future', 'abc', 0)"
    };
    db.execute(insert).await;

    let up = migrate(&db, &["up"]);
    up.assert_code(1);
    assert!(up.stderr.contains("9999"), "{}", up.describe());
    let status = migrate(&db, &["status"]);
    status.assert_code(1);
    assert!(status.stdout.contains("UNKNOWN"), "{}", status.describe());
    migrate(&db, &["verify"]).assert_code(1);
}

#[test]
fn a_database_url_of_another_kind_is_bad_configuration() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let run = keel(
        dir.path(),
        &[(
            "DATABASE_URL",
            "mysql://keel:mysql-password-value@localhost/keel",
        )],
        &["migrate", "status"],
    );
    run.assert_code(2);
    assert!(run.stderr.contains("DATABASE_URL"), "{}", run.describe());
    assert!(
        !run.output().contains("mysql-password-value"),
        "{}",
        run.describe()
    );
}

#[test]
fn an_unreachable_database_fails_without_printing_the_password() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let port = common::free_port();
    let url = format!("postgres://keel:pg-password-value@127.0.0.1:{port}/keel");
    let run = keel(
        dir.path(),
        &[("DATABASE_URL", &url), ("MIGRATION_TIMEOUT_SECONDS", "5")],
        &["migrate", "status"],
    );
    run.assert_code(1);
    assert_no_crash(&run);
    assert!(
        !run.output().contains("pg-password-value"),
        "{}",
        run.describe()
    );
}

#[test]
fn migrate_in_a_fresh_directory_uses_the_default_database() {
    let dir = tempfile::tempdir().expect("temporary directory");
    keel(dir.path(), &[], &["migrate", "up"]).assert_code(0);
    assert!(dir.path().join("keel.db").is_file());
    keel(dir.path(), &[], &["migrate", "verify"]).assert_code(0);
}

#[test]
fn the_stock_binary_has_no_application_migrations() {
    let dir = tempfile::tempdir().expect("temporary directory");
    keel(dir.path(), &[], &["migrate", "up"]).assert_code(0);
    let status = keel(dir.path(), &[], &["--json", "migrate", "status"]);
    let report = status.assert_code(0).json();
    assert!(report.get("app_migrations").is_none(), "{report}");
    let down = keel(dir.path(), &[], &["migrate", "down", "--app", "--to", "0"]);
    down.assert_code(2);
    assert!(
        down.stderr.contains("no application migrations"),
        "{}",
        down.describe()
    );
    assert_no_crash(&down);
}
