//! `keel backup FILE` and `keel restore FILE [--verify] [--force]` through the built binary
//! (SPEC §1): the SQLite round trip into a new DATABASE_URL, `--json`, the exit codes, the hint
//! when the PostgreSQL client tools are missing, and no password in any output.

use crate::common;

use std::path::Path;

use common::{keel, Run};
use keel_testkit::TestDb;
use serde_json::Value;

const PASSWORD: &str = "pw-Zq9-never-printed";

fn sqlite_url(dir: &Path, name: &str) -> String {
    format!("sqlite://{}", dir.join(name).display())
}

/// A migrated SQLite database with six jobs in `dir`; its URL.
fn source(dir: &Path) -> String {
    let url = sqlite_url(dir, "source.db");
    keel(dir, &[("DATABASE_URL", &url)], &["migrate", "up"]).assert_code(0);
    keel(
        dir,
        &[("DATABASE_URL", &url)],
        &["queue", "enqueue", "diag.noop", "--count", "6"],
    )
    .assert_code(0);
    url
}

fn jobs_in(dir: &Path, url: &str) -> usize {
    let run = keel(dir, &[("DATABASE_URL", url)], &["--json", "queue", "list"]);
    run.assert_code(0);
    run.json().as_array().map(Vec::len).expect("a list of jobs")
}

/// The password in a URL, if it has one.
fn password_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    userinfo
        .split_once(':')
        .map(|(_, p)| p.to_string())
        .filter(|p| !p.is_empty())
}

fn assert_no_password(run: &Run) {
    assert!(
        !run.output().contains(PASSWORD),
        "the password was printed:\n{}",
        run.describe()
    );
}

#[test]
fn backup_then_restore_into_a_new_database_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let url = source(dir);
    let env = [("DATABASE_URL", url.as_str())];

    let run = keel(dir, &env, &["backup", "first.keel"]);
    run.assert_code(0);
    assert!(run.stdout.contains("first.keel"), "{}", run.describe());
    let jobs_line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("jobs "))
        .unwrap_or_else(|| panic!("no jobs line:\n{}", run.describe()));
    assert!(jobs_line.trim_end().ends_with(" 6"), "{jobs_line}");
    assert!(dir.join("first.keel.manifest.json").is_file());

    // --json prints the manifest, which is also what the file beside the backup holds.
    let run = keel(dir, &env, &["--json", "backup", "second.keel"]);
    run.assert_code(0);
    let manifest = run.json();
    assert_eq!(manifest["engine"], "sqlite", "{manifest}");
    assert_eq!(
        manifest["migrations"],
        serde_json::json!([1, 2, 3, 4, 5, 6, 7])
    );
    assert_eq!(manifest["tables"]["jobs"], 6, "{manifest}");
    assert!(manifest["created_at"].is_string(), "{manifest}");
    let written: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("second.keel.manifest.json")).expect("manifest"),
    )
    .expect("JSON");
    assert_eq!(written, manifest);

    // Exit codes: an existing FILE is refused (1), a missing FILE argument is bad usage (2).
    let before = std::fs::read(dir.join("first.keel")).expect("backup");
    let run = keel(dir, &env, &["backup", "first.keel"]);
    run.assert_code(1);
    assert!(
        run.stderr.contains("first.keel exists"),
        "{}",
        run.describe()
    );
    assert_eq!(
        std::fs::read(dir.join("first.keel")).expect("backup"),
        before
    );
    keel(dir, &env, &["backup"]).assert_code(2);
    keel(dir, &env, &["restore"]).assert_code(2);

    // Restore into a new DATABASE_URL (its directory does not exist yet).
    let target = sqlite_url(dir, "restored/keel.db");
    let target_env = [("DATABASE_URL", target.as_str())];
    let run = keel(dir, &target_env, &["restore", "first.keel"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains("schema verify: clean"),
        "{}",
        run.describe()
    );
    assert!(run.stdout.lines().any(|l| l == "ok"), "{}", run.describe());
    assert_eq!(jobs_in(dir, &target), 6);
    keel(dir, &target_env, &["migrate", "verify"]).assert_code(0);

    // A non-empty target is refused and left alone; --force replaces it.
    let before = std::fs::read(dir.join("restored/keel.db")).expect("target");
    let run = keel(dir, &target_env, &["restore", "second.keel"]);
    run.assert_code(1);
    assert!(
        run.stderr.contains("not empty") && run.stderr.contains("--force"),
        "{}",
        run.describe()
    );
    assert_eq!(
        std::fs::read(dir.join("restored/keel.db")).expect("target"),
        before
    );
    keel(dir, &target_env, &["restore", "--force", "second.keel"]).assert_code(0);
    assert_eq!(jobs_in(dir, &target), 6);

    // --json prints the report.
    let other = sqlite_url(dir, "other.db");
    let run = keel(
        dir,
        &[("DATABASE_URL", &other)],
        &["--json", "restore", "first.keel"],
    );
    run.assert_code(0);
    let report = run.json();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["verified"], false, "{report}");
    let tables = report["tables"].as_array().expect("tables");
    assert!(!tables.is_empty());
    assert!(
        tables
            .iter()
            .all(|t| t["matches"] == true && t["backup"] == t["restored"]),
        "{report}"
    );
    assert_eq!(
        report["migrations_applied"],
        serde_json::json!([1, 2, 3, 4, 5, 6, 7])
    );
    assert_eq!(report["verify"]["missing"], serde_json::json!([]));

    // --verify touches nothing: the source (not empty) stays as it was.
    let run = keel(dir, &env, &["--json", "restore", "--verify", "first.keel"]);
    run.assert_code(0);
    assert_eq!(run.json()["verified"], true, "{}", run.describe());
    assert_eq!(jobs_in(dir, &url), 6);

    // A truncated backup fails verification.
    std::fs::write(dir.join("cut.keel"), &before[..before.len() / 2]).expect("write");
    std::fs::copy(
        dir.join("first.keel.manifest.json"),
        dir.join("cut.keel.manifest.json"),
    )
    .expect("copy");
    let run = keel(dir, &env, &["restore", "--verify", "cut.keel"]);
    run.assert_code(1);
    assert!(run.stderr.contains("damaged"), "{}", run.describe());

    // A file that is no backup, and a missing file.
    std::fs::write(dir.join("notes.txt"), "hello").expect("write");
    keel(dir, &target_env, &["restore", "--force", "notes.txt"]).assert_code(1);
    keel(dir, &target_env, &["restore", "missing.keel"]).assert_code(1);
}

#[test]
fn a_backup_restores_only_into_its_own_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let url = source(dir);
    keel(dir, &[("DATABASE_URL", &url)], &["backup", "sqlite.keel"]).assert_code(0);

    let postgres = format!("postgres://keel:{PASSWORD}@127.0.0.1:1/keel");
    let run = keel(
        dir,
        &[("DATABASE_URL", &postgres)],
        &["restore", "sqlite.keel"],
    );
    run.assert_code(2);
    assert!(run.stderr.contains("keel db copy"), "{}", run.describe());
    assert_no_password(&run);

    std::fs::write(dir.join("pg.dump"), b"PGDMP\x01\x0e\x00not really").expect("write");
    let run = keel(
        dir,
        &[("DATABASE_URL", &url)],
        &["restore", "--verify", "pg.dump"],
    );
    run.assert_code(2);
    assert!(run.stderr.contains("keel db copy"), "{}", run.describe());
}

#[test]
fn without_the_postgres_client_tools_the_error_says_how_to_install_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let empty_path = dir.join("bin");
    std::fs::create_dir(&empty_path).expect("mkdir");
    let path = empty_path.display().to_string();
    let postgres = format!("postgres://keel:{PASSWORD}@127.0.0.1:1/keel");
    let env = [("DATABASE_URL", postgres.as_str()), ("PATH", path.as_str())];

    let run = keel(dir, &env, &["backup", "keel.dump"]);
    run.assert_code(1);
    assert!(
        run.stderr.contains("pg_dump was not found on PATH")
            && run.stderr.contains("apt install postgresql-client"),
        "{}",
        run.describe()
    );
    assert_no_password(&run);
    assert!(!dir.join("keel.dump").exists());
    assert!(!dir.join("keel.dump.manifest.json").exists());

    std::fs::write(dir.join("old.dump"), b"PGDMP\x01\x0e\x00not really").expect("write");
    let run = keel(dir, &env, &["--json", "restore", "old.dump"]);
    run.assert_code(1);
    assert!(
        run.stderr.contains("pg_restore was not found on PATH"),
        "{}",
        run.describe()
    );
    assert_no_password(&run);
}

/// On Postgres (when configured): a backup and a verification through the binary, with a password
/// in DATABASE_URL: the URL appears in no output, and neither does a wrong password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_no_output_contains_the_password() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let url = db.url().to_string();
    let env = [("DATABASE_URL", url.as_str())];
    keel(dir, &env, &["migrate", "up"]).assert_code(0);
    keel(
        dir,
        &env,
        &["queue", "enqueue", "diag.noop", "--count", "3"],
    )
    .assert_code(0);
    let run = keel(dir, &env, &["--json", "backup", "pg.dump"]);
    run.assert_code(0);
    assert_eq!(run.json()["engine"], "postgres");
    assert_eq!(run.json()["tables"]["jobs"], 3);
    assert!(!run.output().contains(&url));
    let run = keel(dir, &env, &["restore", "--verify", "pg.dump"]);
    run.assert_code(0);
    assert!(run.stdout.contains("keel_verify_"), "{}", run.describe());
    assert!(!run.output().contains(&url));

    // pg_dump's own error text is reported (an old pg_dump against a newer server says so), with
    // the password taken out.
    let fake = dir.join("fake-bin");
    std::fs::create_dir(&fake).expect("mkdir");
    let script = fake.join("pg_dump");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"pg_dump: error: aborting because of server version mismatch (pw=[$PGPASSWORD])\" >&2\nexit 1\n",
    )
    .expect("write");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = keel(
        dir,
        &[("DATABASE_URL", &url), ("PATH", &path)],
        &["backup", "old.dump"],
    );
    run.assert_code(1);
    assert!(
        run.stderr.contains(
            "pg_dump failed: pg_dump: error: aborting because of server version mismatch"
        ),
        "{}",
        run.describe()
    );
    if let Some(password) = password_of(&url) {
        assert!(
            !run.output().contains(&format!("pw=[{password}]")),
            "{}",
            run.describe()
        );
        assert!(run.output().contains("pw=[***]"), "{}", run.describe());
    }
    assert!(!dir.join("old.dump").exists(), "no partial file is left");
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("old.dump"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A wrong password: the connection fails, and the attempted password is not shown.
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host_onwards = rest.split_once('@').map_or(rest, |(_, after)| after);
    let wrong = format!("{scheme}://postgres:{PASSWORD}@{host_onwards}");
    // (A server that trusts local connections lets it through; the output is checked either way.)
    let run = keel(dir, &[("DATABASE_URL", &wrong)], &["backup", "wrong.dump"]);
    assert!(matches!(run.code, Some(0 | 1)), "{}", run.describe());
    assert_no_password(&run);
    let run = keel(
        dir,
        &[("DATABASE_URL", &wrong)],
        &["restore", "--verify", "pg.dump"],
    );
    assert!(matches!(run.code, Some(0 | 1)), "{}", run.describe());
    assert_no_password(&run);
}

/// `--metrics-file` writes the backup's time and size for node_exporter's textfile collector
/// (the `keel_backup_*` families of docs/HTTP.md), replacing the previous file; a failed backup
/// leaves it as it was.
#[test]
fn a_successful_backup_writes_its_metrics_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let url = source(dir);
    let env = [("DATABASE_URL", url.as_str())];
    let prom = dir.join("keel_backup.prom");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let prom_arg = prom.display().to_string();
    let run = keel(
        dir,
        &env,
        &["backup", "one.keel", "--metrics-file", &prom_arg],
    );
    run.assert_code(0);
    let text = std::fs::read_to_string(&prom).expect("the metrics file");
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} sample:\n{text}"))
            .parse()
            .expect("a number")
    };
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/HTTP.md"),
    )
    .expect("docs/HTTP.md");
    for family in [
        "keel_backup_last_success_timestamp_seconds",
        "keel_backup_size_bytes",
    ] {
        assert!(text.contains(&format!("# TYPE {family} gauge\n")), "{text}");
        assert!(
            docs.contains(&format!("| `{family}`")),
            "{family} is not in docs/HTTP.md"
        );
    }
    let families = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!(
        families, 2,
        "every family of the file is documented:\n{text}"
    );
    let at = value("keel_backup_last_success_timestamp_seconds");
    assert!(
        at >= before.floor() && at < before + 120.0,
        "{at} vs {before}"
    );
    let size = std::fs::metadata(dir.join("one.keel")).unwrap().len();
    assert_eq!(value("keel_backup_size_bytes"), size as f64);
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A backup that fails (the file exists) keeps the last success.
    let run = keel(
        dir,
        &env,
        &["backup", "one.keel", "--metrics-file", &prom_arg],
    );
    assert_ne!(run.code, Some(0), "{}", run.describe());
    assert_eq!(std::fs::read_to_string(&prom).unwrap(), text);
}
