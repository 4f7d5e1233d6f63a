//! The job system across real processes on one Postgres: jobs survive SIGKILL, schedules fire
//! once per tick with several processes, SIGTERM releases what it cannot finish.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use keel_testkit::{KeelProcess, TestDb};

use common::{bin, keel};

fn env<'a>(db: &'a TestDb, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![("DATABASE_URL", db.url()), ("LOG_LEVEL", "warn")];
    env.extend_from_slice(extra);
    env
}

async fn wait_for(db: &TestDb, sql: &str, want: i64, limit: Duration) -> i64 {
    let started = Instant::now();
    loop {
        let n = db.scalar(sql).await;
        if n >= want || started.elapsed() > limit {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn worker(dir: &Path, env: &[(&str, &str)]) -> KeelProcess {
    KeelProcess::serve(&bin(), dir, env, &["--role", "worker"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_job_is_lost_when_workers_are_killed() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env = env(
        &db,
        &[("JOB_LEASE_SECONDS", "5"), ("WORKER_CONCURRENCY", "16")],
    );
    keel(dir.path(), &env, &["migrate", "up"]).assert_code(0);
    keel(
        dir.path(),
        &env,
        &[
            "queue",
            "enqueue",
            "diag.sleep",
            "--args",
            r#"{"ms":150}"#,
            "--count",
            "2000",
        ],
    )
    .assert_code(0);
    assert_eq!(
        db.scalar("SELECT count(*) FROM jobs WHERE kind = 'diag.sleep'")
            .await,
        2000
    );

    let mut steady = worker(dir.path(), &env);
    steady.wait_ready(Duration::from_secs(30)).await;
    let mut victim = worker(dir.path(), &env);
    victim.wait_ready(Duration::from_secs(30)).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        victim.signal("KILL");
        victim.wait_exit(Duration::from_secs(10)).await;
        victim = worker(dir.path(), &env);
        victim.wait_ready(Duration::from_secs(30)).await;
    }
    let completed = wait_for(
        &db,
        "SELECT count(*) FROM jobs WHERE kind = 'diag.sleep' AND state = 'completed'",
        2000,
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(completed, 2000, "jobs lost:\n{}", steady.logs());
    assert_eq!(
        db.scalar("SELECT count(*) FROM jobs WHERE state = 'discarded'")
            .await,
        0
    );
    let rescued = db
        .scalar("SELECT count(*) FROM jobs WHERE kind = 'diag.sleep' AND attempt > 1")
        .await;
    assert!(
        rescued > 0,
        "the killed worker held jobs that were rescued and run again"
    );
    for process in [&steady, &victim] {
        process.signal("TERM");
    }
    assert!(steady.wait_exit(Duration::from_secs(30)).await.success());
    assert!(victim.wait_exit(Duration::from_secs(30)).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_fire_each_tick_once() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("keel.toml"),
        "[[schedules]]\nname = \"tick\"\ncron = \"* * * * * *\"\nkind = \"diag.noop\"\n",
    )
    .unwrap();
    let env = env(&db, &[]);
    keel(dir.path(), &env, &["migrate", "up"]).assert_code(0);
    let mut processes = Vec::new();
    for role in ["all", "worker", "worker"] {
        processes.push(KeelProcess::serve(
            &bin(),
            dir.path(),
            &env,
            &["--role", role],
        ));
    }
    for p in processes.iter_mut() {
        p.wait_ready(Duration::from_secs(30)).await;
    }
    tokio::time::sleep(Duration::from_secs(11)).await;

    // Switched off, the schedule stops within the flag cache's 2 s; the counts below are then
    // read from rows that no longer change, so they agree with one another.
    keel(dir.path(), &env, &["flags", "set", "scheduler", "off"]).assert_code(0);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let count = "SELECT count(*) FROM jobs WHERE kind = 'diag.noop'";
    let fired = db.scalar(count).await;
    let distinct = db
        .scalar("SELECT count(DISTINCT unique_key) FROM jobs WHERE kind = 'diag.noop'")
        .await;
    let ticks = db
        .scalar("SELECT count(*) FROM schedule_ticks WHERE name = 'tick'")
        .await;
    let span = db
        .scalar(
            "SELECT (EXTRACT(EPOCH FROM max(fire_at)) - EXTRACT(EPOCH FROM min(fire_at)))::bigint + 1
             FROM schedule_ticks WHERE name = 'tick'",
        )
        .await;
    assert!(fired >= 10, "only {fired} firings in 11 s");
    assert_eq!(fired, distinct, "a tick fired twice");
    assert_eq!(fired, ticks, "one job per recorded tick");
    assert_eq!(
        ticks, span,
        "every second between the first and last tick fired exactly once"
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        db.scalar(count).await,
        fired,
        "firings continued with the scheduler switched off"
    );
    for p in &processes {
        p.signal("TERM");
    }
    for p in processes.iter_mut() {
        assert!(p.wait_exit(Duration::from_secs(30)).await.success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_or_releases_running_jobs() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env = env(&db, &[("SHUTDOWN_GRACE_SECONDS", "2")]);
    keel(dir.path(), &env, &["migrate", "up"]).assert_code(0);
    let mut first = worker(dir.path(), &env);
    first.wait_ready(Duration::from_secs(30)).await;
    keel(
        dir.path(),
        &env,
        &[
            "queue",
            "enqueue",
            "diag.sleep",
            "--args",
            r#"{"ms":500}"#,
            "--queue",
            "default",
        ],
    )
    .assert_code(0);
    keel(
        dir.path(),
        &env,
        &[
            "queue",
            "enqueue",
            "diag.sleep",
            "--args",
            r#"{"ms":8000}"#,
            "--count",
            "3",
        ],
    )
    .assert_code(0);
    let running = wait_for(
        &db,
        "SELECT count(*) FROM jobs WHERE kind = 'diag.sleep' AND state = 'running'",
        4,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(running, 4);

    let stopping = Instant::now();
    first.signal("TERM");
    assert!(first.wait_exit(Duration::from_secs(15)).await.success());
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "exit within the grace period"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM jobs WHERE kind = 'diag.sleep' AND state = 'completed'")
            .await,
        1,
        "the short job finished during the grace period"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM jobs WHERE kind = 'diag.sleep' AND state = 'available' AND attempt = 0")
            .await,
        3,
        "the long jobs were released, their attempt not counted"
    );

    let mut second = worker(dir.path(), &env);
    second.wait_ready(Duration::from_secs(30)).await;
    let completed = wait_for(
        &db,
        "SELECT count(*) FROM jobs WHERE kind = 'diag.sleep' AND state = 'completed'",
        4,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(completed, 4, "the next worker completed the released jobs");
    second.signal("TERM");
    assert!(second.wait_exit(Duration::from_secs(15)).await.success());
}
