//! `keel::ops::backup` on both engines: a backup taken while webhooks and jobs flow holds every
//! acknowledged write from before it started; the manifest counts what the file holds; restores go
//! only into empty databases of the same engine (unless forced) and change nothing when refused;
//! `verify` passes for a good backup, fails for a damaged or mismatched one, and leaves no scratch
//! database behind.
//!
//! Where a restore goes: SQLite restores into a fresh `TestDb` (a new file). A Postgres archive of
//! one schema restores into that same schema (pg_restore cannot rename it), so a fresh `TestDb` —
//! a new schema in the shared test database — cannot receive it. Each Postgres restore therefore
//! goes into a database of its own on the test server (`CREATE DATABASE`), whose URL names the
//! source's schema in its search path, and which is dropped when the test ends.

use crate::billing_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_support::*;
use keel::ops::backup::{self, manifest_path, BackupError, Manifest, RestoreOptions};
use keel::store::migrate::{Migrator, State};
use keel_testkit::{TestApp, TestDb};
use secrecy::SecretString;
use serde_json::json;
use sqlx::Connection;

mod under_load;

const TIMEOUT: Duration = Duration::from_secs(60);

fn secret(url: &str) -> SecretString {
    SecretString::from(url.to_string())
}

fn options(verify: bool, force: bool) -> RestoreOptions {
    RestoreOptions {
        verify,
        force,
        timeout: TIMEOUT,
    }
}

/// An empty database of the source's engine to restore into (see the module comment).
enum Target {
    Sqlite(TestDb),
    Postgres {
        base: String,
        name: String,
        url: String,
    },
}

impl Target {
    async fn for_source(source: &TestDb) -> Target {
        match source {
            TestDb::Sqlite { .. } => Target::Sqlite(TestDb::sqlite()),
            TestDb::Postgres { base, schema, .. } => {
                let name = format!("keel_restore_{}", uuid::Uuid::now_v7().simple());
                let mut conn = sqlx::PgConnection::connect(base).await.expect("connect");
                sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create the target database");
                let _ = conn.close().await;
                let url = format!(
                    "{}?options=-c%20search_path%3D{schema}",
                    with_database(base, &name)
                );
                Target::Postgres {
                    base: base.clone(),
                    name,
                    url,
                }
            }
        }
    }

    fn url(&self) -> &str {
        match self {
            Target::Sqlite(db) => db.url(),
            Target::Postgres { url, .. } => url,
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Target::Postgres { base, name, .. } = self {
            keel_testkit::execute_detached(
                base,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
}

/// `base` (a URL without query) pointed at the database `name`.
fn with_database(base: &str, name: &str) -> String {
    let base = base.split('?').next().unwrap_or(base);
    let (scheme, rest) = base.split_once("://").expect("a URL");
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{authority}/{name}")
}

/// The first column of every row of `sql` on the database at `url`, as text.
async fn column(url: &str, sql: &str) -> Vec<String> {
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("sqlite");
        let rows: Vec<String> = sqlx::query_scalar(sql)
            .fetch_all(&mut conn)
            .await
            .expect("sql");
        let _ = conn.close().await;
        rows
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("postgres");
        let rows: Vec<String> = sqlx::query_scalar(sql)
            .fetch_all(&mut conn)
            .await
            .expect("sql");
        let _ = conn.close().await;
        rows
    }
}

async fn count(url: &str, table: &str) -> i64 {
    column(url, &format!("SELECT CAST(count(*) AS TEXT) FROM {table}"))
        .await
        .first()
        .and_then(|n| n.parse().ok())
        .expect("a count")
}

async fn execute(url: &str, sql: &str) {
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("sqlite");
        sqlx::raw_sql(sql).execute(&mut conn).await.expect("sql");
        let _ = conn.close().await;
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("postgres");
        sqlx::raw_sql(sql).execute(&mut conn).await.expect("sql");
        let _ = conn.close().await;
    }
}

/// Every migration applied and `verify` clean on the database at `url`.
async fn assert_schema_complete(url: &str) {
    let migrator = Migrator::new(&secret(url), TIMEOUT).expect("migrator");
    let status = migrator.status().await.expect("status");
    assert!(!status.is_empty());
    assert!(
        status.iter().all(|s| s.state == State::Applied),
        "{status:#?}"
    );
    let verify = migrator.verify().await.expect("verify");
    assert!(verify.is_clean(), "{verify:#?}");
}

/// Every table of the manifest has, at `url`, the manifest's row count.
async fn assert_counts(url: &str, manifest: &Manifest) {
    assert!(manifest.tables.contains_key("jobs"), "{manifest:#?}");
    for (table, rows) in &manifest.tables {
        assert_eq!(count(url, table).await, *rows, "table {table}");
    }
}

fn backup_file(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// One acknowledged write and when its acknowledgement arrived.
struct Acked {
    id: String,
    at: Instant,
}

/// Delivers signed RevenueCat events until `stop`, recording the ones answered 200.
async fn deliver_webhooks(base: String, stop: Arc<AtomicBool>) -> Vec<Acked> {
    let client = reqwest::Client::new();
    let mut acked = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let id = format!("evt-backup-{n}-{}", uuid::Uuid::new_v4().simple());
        let mut event = fixture("revenuecat", "initial_purchase");
        event = set(event, "/event/id", json!(id));
        event = set(
            event,
            "/event/app_user_id",
            json!(format!("user-{}", n % 7)),
        );
        event = set(event, "/event/event_timestamp_ms", json!(ms_in_days(0)));
        event = set(event, "/event/expiration_at_ms", json!(ms_in_days(7)));
        let response = client
            .post(format!("{base}/webhooks/revenuecat"))
            .header("authorization", format!("Bearer {RC_SECRET}"))
            .json(&event)
            .send()
            .await;
        if let Ok(r) = response {
            if r.status() == 200 {
                acked.push(Acked {
                    id,
                    at: Instant::now(),
                });
            }
        }
    }
    acked
}

/// Enqueues jobs through the admin API until `stop`, recording the ids returned.
async fn enqueue_jobs(base: String, stop: Arc<AtomicBool>) -> Vec<Acked> {
    let client = reqwest::Client::new();
    let mut acked = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let response = client
            .post(format!("{base}/admin/api/jobs"))
            .bearer_auth(ADMIN)
            .json(&json!({ "kind": "diag.noop", "args": { "n": n } }))
            .send()
            .await;
        let Ok(r) = response else { continue };
        if r.status() != 201 {
            continue;
        }
        let Ok(body) = r.json::<serde_json::Value>().await else {
            continue;
        };
        if let Some(id) = body["id"].as_i64() {
            acked.push(Acked {
                id: id.to_string(),
                at: Instant::now(),
            });
        }
    }
    acked
}

/// An app with some webhooks delivered and jobs enqueued; its config directory lives as long.
async fn seeded(db: TestDb) -> (TestApp, tempfile::TempDir) {
    let (dir, config) = config_dir();
    // No worker and no scheduler: the rows counted stay the rows seeded.
    let app = app(db, &config)
        .env("WORKER_ENABLED", "false")
        .env("SCHEDULER_ENABLED", "false")
        .spawn()
        .await;
    for n in 0..5 {
        let event = set(
            fixture("revenuecat", "initial_purchase"),
            "/event/id",
            json!(format!("evt-seed-{n}")),
        );
        assert_eq!(revenuecat(&app, &event).await.status, 200);
    }
    for _ in 0..4 {
        let r = app
            .client
            .post(app.url("/admin/api/jobs"))
            .bearer_auth(ADMIN)
            .json(&json!({ "kind": "diag.noop" }))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 201);
    }
    (app, dir)
}

keel_testkit::engine_test!(a_restore_into_a_non_empty_target_is_refused_and_changes_nothing);
async fn a_restore_into_a_non_empty_target_is_refused_and_changes_nothing(db: TestDb) {
    let (app, _config) = seeded(db).await;
    let url = app.db.url().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = backup_file(&dir, "keel.backup");
    let manifest = backup::backup(&secret(&url), &file, TIMEOUT)
        .await
        .expect("backup");
    assert_eq!(manifest.tables["billing_events"], 5);
    assert!(manifest.tables["jobs"] >= 4, "{manifest:#?}");

    // A backup never replaces a file.
    let bytes = std::fs::read(&file).expect("backup");
    let err = backup::backup(&secret(&url), &file, TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, BackupError::Exists(_)), "{err}");
    assert!(err.to_string().contains("exists"), "{err}");
    assert_eq!(std::fs::read(&file).expect("backup"), bytes);

    let target = Target::for_source(&app.db).await;
    let report = backup::restore(&secret(target.url()), &file, options(false, false))
        .await
        .expect("restore into an empty target");
    assert!(report.ok, "{report:#?}");

    // The target changes after the restore; a second restore must not undo that.
    execute(target.url(), "DELETE FROM jobs").await;
    let sqlite_bytes = target_file(&target).map(|p| std::fs::read(p).expect("target file"));
    let err = backup::restore(&secret(target.url()), &file, options(false, false))
        .await
        .unwrap_err();
    assert!(matches!(err, BackupError::NotEmpty(_)), "{err}");
    assert!(!err.is_usage());
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(
        count(target.url(), "jobs").await,
        0,
        "the refused restore changed the target"
    );
    assert_eq!(count(target.url(), "billing_events").await, 5);
    if let Some(before) = sqlite_bytes {
        let path = target_file(&target).expect("a file");
        assert_eq!(
            std::fs::read(path).expect("target file"),
            before,
            "the file changed"
        );
    }

    // --force replaces the contents.
    let report = backup::restore(&secret(target.url()), &file, options(false, true))
        .await
        .expect("forced restore");
    assert!(report.ok, "{report:#?}");
    assert_counts(target.url(), &manifest).await;
    assert_schema_complete(target.url()).await;
    app.shutdown().await.expect("shutdown");
}

keel_testkit::engine_test!(verify_passes_for_a_good_backup_and_fails_for_a_damaged_one);
async fn verify_passes_for_a_good_backup_and_fails_for_a_damaged_one(db: TestDb) {
    let (app, _config) = seeded(db).await;
    let url = app.db.url().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = backup_file(&dir, "keel.backup");
    let manifest = backup::backup(&secret(&url), &file, TIMEOUT)
        .await
        .expect("backup");
    let scratch_before = scratch_databases(&app.db).await;

    // Verifying goes into a scratch database: the (non-empty) target is neither refused nor
    // touched.
    let report = backup::restore(&secret(&url), &file, options(true, false))
        .await
        .expect("verify");
    assert!(report.ok, "{report:#?}");
    assert!(report.verified);
    assert_eq!(report.manifest.as_ref(), Some(&manifest));
    assert_eq!(report.tables.len(), manifest.tables.len());
    assert!(
        report
            .tables
            .iter()
            .all(|t| t.matches && t.backup == t.restored),
        "{report:#?}"
    );
    assert!(report.status.iter().all(|s| s.state == State::Applied));
    assert!(report.verify.is_clean());
    let scratch = report.scratch.clone().expect("a scratch database");
    assert_scratch_gone(&app.db, &scratch).await;
    assert_counts(&url, &manifest).await;

    // A manifest that disagrees with the file fails the verification.
    let edited = backup_file(&dir, "edited.backup");
    std::fs::copy(&file, &edited).expect("copy");
    let mut wrong = manifest.clone();
    *wrong.tables.get_mut("jobs").expect("jobs") += 1;
    std::fs::write(
        manifest_path(&edited),
        serde_json::to_string(&wrong).expect("json"),
    )
    .expect("write");
    let report = backup::restore(&secret(&url), &edited, options(true, false))
        .await
        .expect("verify runs");
    assert!(!report.ok);
    assert!(
        report.problems.iter().any(|p| p.contains("jobs")),
        "{:?}",
        report.problems
    );
    assert_scratch_gone(&app.db, report.scratch.as_deref().expect("scratch")).await;

    // A truncated file fails, and leaves nothing behind.
    let bytes = std::fs::read(&file).expect("backup");
    let truncated = backup_file(&dir, "truncated.backup");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    std::fs::copy(manifest_path(&file), manifest_path(&truncated)).expect("copy manifest");
    match backup::restore(&secret(&url), &truncated, options(true, false)).await {
        Ok(report) => assert!(!report.ok, "a truncated backup verified: {report:#?}"),
        Err(e) => {
            assert!(
                matches!(e, BackupError::Damaged(_) | BackupError::Tool { .. }),
                "{e}"
            );
            assert!(!e.to_string().contains("postgres:postgres@"), "{e}");
        }
    }
    // Other tests' verifications may be in flight: every scratch database made since must go.
    keel_testkit::eventually(
        "no scratch database left behind",
        Duration::from_secs(60),
        || async {
            let now = scratch_databases(&app.db).await;
            now.is_subset(&scratch_before).then_some(())
        },
    )
    .await;
    assert_counts(&url, &manifest).await;
    app.shutdown().await.expect("shutdown");
}

/// The file of a SQLite target.
fn target_file(target: &Target) -> Option<PathBuf> {
    match target {
        Target::Sqlite(db) => db.path(),
        Target::Postgres { .. } => None,
    }
}

/// The scratch databases `verify` made on the Postgres server (SQLite: in the temp directory).
async fn scratch_databases(db: &TestDb) -> BTreeSet<String> {
    match db {
        TestDb::Sqlite { .. } => std::fs::read_dir(std::env::temp_dir())
            .map(|dir| {
                dir.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("keel-verify-"))
                    .collect()
            })
            .unwrap_or_default(),
        TestDb::Postgres { base, .. } => column(
            base,
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'keel_verify_%'",
        )
        .await
        .into_iter()
        .collect(),
    }
}

async fn assert_scratch_gone(db: &TestDb, scratch: &str) {
    match db {
        TestDb::Sqlite { .. } => {
            let path = Path::new(scratch);
            assert!(!path.exists(), "{scratch} is still there");
            assert!(
                !path.parent().expect("a directory").exists(),
                "{scratch}'s directory is still there"
            );
        }
        TestDb::Postgres { .. } => {
            assert!(scratch.starts_with("keel_verify_"), "{scratch}");
            assert!(
                !scratch_databases(db).await.contains(scratch),
                "{scratch} was not dropped"
            );
        }
    }
}

#[tokio::test]
async fn a_backup_restores_only_into_its_own_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = dir.path().join("a.db");
    std::fs::write(&sqlite, b"SQLite format 3\0rest of the file").expect("write");
    let pg = dir.path().join("a.dump");
    std::fs::write(&pg, b"PGDMP\x01\x0e\x00rest").expect("write");
    let other = dir.path().join("notes.txt");
    std::fs::write(&other, b"hello").expect("write");

    let postgres_url = "postgres://keel:s3cret-pw@127.0.0.1:1/keel";
    let err = backup::restore(&secret(postgres_url), &sqlite, RestoreOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, BackupError::EngineMismatch { .. }), "{err}");
    assert!(err.is_usage());
    assert!(err.to_string().contains("keel db copy"), "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");

    let sqlite_url = format!("sqlite://{}", dir.path().join("target.db").display());
    let err = backup::restore(&secret(&sqlite_url), &pg, RestoreOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, BackupError::EngineMismatch { .. }), "{err}");
    assert!(!dir.path().join("target.db").exists(), "nothing is created");

    let err = backup::restore(&secret(&sqlite_url), &other, RestoreOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, BackupError::UnknownFormat(_)), "{err}");
    let err = backup::restore(
        &secret(&sqlite_url),
        &dir.path().join("nothing"),
        RestoreOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, BackupError::NotFound(_)), "{err}");
}
