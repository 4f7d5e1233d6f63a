//! `keel db copy --from URL --to URL` (SPEC §1) through the built binary: usage errors exit 2, a
//! source without migrations exits 1 with the hint, a copy prints its row counts, and no output
//! ever shows a URL or the Postgres password.

use crate::common;

use common::{keel, Run};
use keel_testkit::TestDb;

fn copy(dir: &std::path::Path, args: &[&str]) -> Run {
    let mut full = vec!["db", "copy"];
    full.extend_from_slice(args);
    keel(dir, &[], &full)
}

/// A SQLite database migrated by `keel migrate up`.
fn migrated() -> TestDb {
    let db = TestDb::sqlite();
    let dir = db.dir().expect("sqlite dir").to_path_buf();
    keel(&dir, &[("DATABASE_URL", db.url())], &["migrate", "up"]).assert_code(0);
    db
}

/// Two users, one job and one flag.
async fn seed(db: &TestDb) {
    db.execute(
        "INSERT INTO users (id, created_at, last_seen_at) VALUES ('u1', 1, 2), ('u2', 3, 4);
         INSERT INTO jobs (queue, kind, args, state, run_at, timeout_ms, created_at)
             VALUES ('default', 'diag.noop', '{}', 'available', 1700000000123, 60000, 1700000000000);
         INSERT INTO flags (name, enabled, updated_at, updated_by) VALUES ('enqueue', 1, 5, 'cli');",
    )
    .await;
}

/// Runs `keel db copy ARGS` off the async runtime.
async fn copy_async(dir: &std::path::Path, args: &[&str]) -> Run {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        copy(&dir, &args)
    })
    .await
    .expect("keel ran")
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let target = format!("sqlite://{}", dir.path().join("t.db").display());
    let run = copy(dir.path(), &["--from", "sqlite://a.db"]);
    run.assert_code(2);
    assert!(run.stderr.contains("--to"), "{}", run.describe());
    let run = copy(
        dir.path(),
        &["--from", "mysql://root:hunter2@db/keel", "--to", &target],
    );
    run.assert_code(2);
    assert!(run.stderr.contains("--from"), "{}", run.describe());
    assert!(!run.output().contains("hunter2"), "{}", run.describe());
    let run = copy(dir.path(), &["--from", &target, "--to", "ftp://x"]);
    run.assert_code(2);
    assert!(run.stderr.contains("--to"), "{}", run.describe());
    assert!(!dir.path().join("t.db").exists());

    let help = keel(dir.path(), &[], &["db", "copy", "--help"]);
    help.assert_code(0);
    for needle in [
        "--from",
        "--to",
        "keel migrate up",
        "one transaction",
        "users",
    ] {
        assert!(
            help.stdout.contains(needle),
            "help lacks {needle}:\n{}",
            help.stdout
        );
    }
}

#[test]
fn a_source_without_migrations_exits_1_with_the_hint() {
    let source = TestDb::sqlite();
    let path = source.path().expect("path");
    std::fs::write(&path, b"").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = format!("sqlite://{}", dir.path().join("t.db").display());
    let run = copy(dir.path(), &["--from", source.url(), "--to", &target]);
    run.assert_code(1);
    assert!(run.stderr.contains("keel migrate up"), "{}", run.describe());
    assert!(
        !run.output().contains(&path.display().to_string()),
        "{}",
        run.describe()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_sqlite_prints_the_counts() {
    let source = tokio::task::spawn_blocking(migrated).await.unwrap();
    seed(&source).await;
    let target = TestDb::sqlite();
    let dir = target.dir().unwrap().to_path_buf();
    let run = copy_async(&dir, &["--from", source.url(), "--to", target.url()]).await;
    run.assert_code(0);
    assert!(
        run.stdout.contains("copied sqlite -> sqlite"),
        "{}",
        run.describe()
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.split_whitespace().eq(["users", "2"])),
        "{}",
        run.describe()
    );
    assert!(run.stdout.contains("4 rows in"), "{}", run.describe());

    // Again into the same target: refused, exit 1, nothing changed.
    let again = copy_async(
        &dir,
        &["--json", "--from", source.url(), "--to", target.url()],
    )
    .await;
    again.assert_code(1);
    assert!(
        again
            .stderr
            .contains("the target is not empty (users has 2 rows)"),
        "{}",
        again.describe()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_prints_json_and_never_the_password() {
    let Some(target) = TestDb::postgres().await else {
        return;
    };
    let source = tokio::task::spawn_blocking(migrated).await.unwrap();
    seed(&source).await;
    let url = target.url().to_string();
    let dir = source.dir().unwrap().to_path_buf();
    let from = source.url().to_string();
    let run = copy_async(&dir, &["--json", "--from", &from, "--to", &url]).await;
    run.assert_code(0);
    let report = run.json();
    assert_eq!(report["from"], "sqlite", "{report}");
    assert_eq!(report["to"], "postgres", "{report}");
    assert_eq!(report["tables"]["users"], 2, "{report}");
    assert_eq!(report["tables"]["jobs"], 1, "{report}");
    assert_eq!(report["tables"]["flags"], 1, "{report}");
    assert_eq!(report["tables"]["audit_log"], 0, "{report}");
    assert_eq!(report["rows"], 4, "{report}");
    assert!(
        report["seconds"].as_f64().is_some_and(|s| s >= 0.0),
        "{report}"
    );
    assert_eq!(target.scalar("SELECT count(*) FROM users").await, 2);
    // The copy again: refused; and a wrong password: refused. Neither shows a URL or password.
    let again = copy_async(&dir, &["--from", &from, "--to", &url]).await;
    again.assert_code(1);
    assert!(
        again.stderr.contains("target is not empty"),
        "{}",
        again.describe()
    );
    // A database that does not exist, reached with a password: the server refuses.
    let base = keel_testkit::postgres_url().expect("postgres url");
    let (scheme, after) = base.split_once("://").expect("a URL");
    let (userinfo, host) = after.split_once('@').expect("a URL with a user");
    let user = userinfo.split(':').next().unwrap_or("postgres");
    let host = host.split('/').next().unwrap_or(host);
    let wrong = format!("{scheme}://{user}:Wrong-Pass-4242@{host}/keel_no_such_database_4242");
    let refused = copy_async(&dir, &["--from", &from, "--to", &wrong]).await;
    refused.assert_code(1);
    for run in [&run, &again, &refused] {
        let output = run.output();
        for secret in [
            url.as_str(),
            wrong.as_str(),
            "postgres:postgres@",
            "Wrong-Pass-4242",
            "postgres://",
        ] {
            assert!(
                !output.contains(secret),
                "output shows {secret}:\n{}",
                run.describe()
            );
        }
    }
}
