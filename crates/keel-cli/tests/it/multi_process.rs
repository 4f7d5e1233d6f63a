//! Several `keel` processes on one Postgres database (SPEC §2): processes that start together
//! migrate once, and with `MIGRATE_ON_START=false` a process waits, not ready, until someone else
//! has migrated.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{bin, keel};
use keel_testkit::{KeelProcess, TestDb};

const READY_WITHIN: Duration = Duration::from_secs(60);
const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// `keel migrate status --json` against `db`, as `version -> state`.
fn migration_states(db: &TestDb, dir: &std::path::Path) -> BTreeMap<i64, String> {
    let run = keel(
        dir,
        &[("DATABASE_URL", db.url())],
        &["migrate", "status", "--json"],
    );
    run.assert_code(0);
    let report = run.json();
    let list = report["migrations"]
        .as_array()
        .unwrap_or_else(|| panic!("migrations must be an array: {report}"));
    let mut states = BTreeMap::new();
    for m in list {
        let version = m["version"].as_i64().expect("version");
        let state = m["state"].as_str().expect("state").to_string();
        assert!(
            states.insert(version, state).is_none(),
            "migration {version} is listed twice: {report}"
        );
    }
    states
}

async fn ready_status(client: &reqwest::Client, process: &KeelProcess) -> Option<u16> {
    client
        .get(process.url("/health/ready"))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

async fn stop(mut process: KeelProcess) {
    process.signal("TERM");
    let started = Instant::now();
    let status = process.wait_exit(Duration::from_secs(40)).await;
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM must end in exit 0:\n{}",
        process.logs()
    );
    assert!(
        started.elapsed() < EXIT_WITHIN,
        "SIGTERM took {:?}:\n{}",
        started.elapsed(),
        process.logs()
    );
    assert!(!process.logs().contains("panicked"), "{}", process.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_started_together_migrate_once() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let env = [("DATABASE_URL", db.url()), ("LOG_LEVEL", "info")];

    // Started at the same moment, on a schema with nothing in it.
    let mut processes: Vec<KeelProcess> = (0..2)
        .map(|_| KeelProcess::serve(&bin(), dir.path(), &env, &[]))
        .collect();
    for process in &mut processes {
        process.wait_ready(READY_WITHIN).await;
    }
    for process in &processes {
        let logs = process.logs();
        assert!(!logs.contains("migration failed"), "{logs}");
        assert!(!logs.contains("ERROR"), "{logs}");
    }

    let states = migration_states(&db, dir.path());
    assert!(!states.is_empty());
    for (version, state) in &states {
        assert_eq!(state, "applied", "migration {version}: {states:?}");
    }
    assert_eq!(
        db.scalar("SELECT count(*) FROM keel_migrations").await,
        states.len() as i64,
        "each migration is recorded exactly once"
    );
    assert_eq!(
        db.scalar("SELECT count(DISTINCT version) FROM keel_migrations")
            .await,
        states.len() as i64
    );
    // Exactly one process applied each migration.
    let applied_lines: usize = processes
        .iter()
        .map(|p| p.logs().matches("migration applied").count())
        .sum();
    assert_eq!(
        applied_lines,
        states.len(),
        "one apply per migration in all logs"
    );

    let verify = keel(
        dir.path(),
        &[("DATABASE_URL", db.url())],
        &["migrate", "verify"],
    );
    verify.assert_code(0);

    for process in processes {
        stop(process).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_worker_processes_share_one_database() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let env = [("DATABASE_URL", db.url())];
    let mut api = KeelProcess::serve(&bin(), dir.path(), &env, &["--role", "api"]);
    let mut worker = KeelProcess::serve(&bin(), dir.path(), &env, &["--role", "worker"]);
    api.wait_ready(READY_WITHIN).await;
    worker.wait_ready(READY_WITHIN).await;

    let client = reqwest::Client::new();
    for (process, role) in [(&api, "api"), (&worker, "worker")] {
        let health: serde_json::Value = client
            .get(process.url("/health"))
            .send()
            .await
            .expect("health")
            .json()
            .await
            .expect("health JSON");
        assert_eq!(health["role"], role, "{health}");
        assert_eq!(health["checks"]["database"]["status"], "ok", "{health}");
    }
    let states = migration_states(&db, dir.path());
    assert_eq!(
        db.scalar("SELECT count(*) FROM keel_migrations").await,
        states.len() as i64
    );
    drop(client);
    stop(api).await;
    stop(worker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_migrate_on_start_a_process_waits_until_migrated_by_hand() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut process = KeelProcess::serve(
        &bin(),
        dir.path(),
        &[("DATABASE_URL", db.url()), ("MIGRATE_ON_START", "false")],
        &[],
    );
    let client = reqwest::Client::new();

    // The listener comes up at once and stays alive, but not ready.
    let started = Instant::now();
    loop {
        let live = client.get(process.url("/health/live")).send().await;
        if live.is_ok_and(|r| r.status() == 200) {
            break;
        }
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!("keel exited ({status}):\n{}", process.logs());
        }
        assert!(
            started.elapsed() < READY_WITHIN,
            "never live:\n{}",
            process.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(5) {
        assert_eq!(
            ready_status(&client, &process).await,
            Some(503),
            "ready before any migration ran:\n{}",
            process.logs()
        );
        assert!(
            process.child.try_wait().ok().flatten().is_none(),
            "keel exited while waiting:\n{}",
            process.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let ready_body: serde_json::Value = client
        .get(process.url("/health/ready"))
        .send()
        .await
        .expect("ready")
        .json()
        .await
        .expect("problem or report JSON");
    assert_ne!(ready_body["status"], "ok", "{ready_body}");
    let audit_log_tables = db
        .scalar(
            "SELECT count(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = 'audit_log'",
        )
        .await;
    assert_eq!(
        audit_log_tables, 0,
        "MIGRATE_ON_START=false must not migrate"
    );

    let up = keel(
        dir.path(),
        &[("DATABASE_URL", db.url())],
        &["migrate", "up"],
    );
    up.assert_code(0);
    let migrated = Instant::now();
    loop {
        if ready_status(&client, &process).await == Some(200) {
            break;
        }
        assert!(
            migrated.elapsed() < Duration::from_secs(10),
            "not ready {:?} after `keel migrate up`:\n{}",
            migrated.elapsed(),
            process.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(client);
    stop(process).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_waiting_for_migrations_exits_zero() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let process = KeelProcess::serve(
        &bin(),
        dir.path(),
        &[("DATABASE_URL", db.url()), ("MIGRATE_ON_START", "false")],
        &[],
    );
    let client = reqwest::Client::new();
    let started = Instant::now();
    while ready_status(&client, &process).await != Some(503) {
        assert!(
            started.elapsed() < READY_WITHIN,
            "never answered:\n{}",
            process.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(client);
    stop(process).await;
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = 'audit_log'",
        )
        .await,
        0
    );
}
