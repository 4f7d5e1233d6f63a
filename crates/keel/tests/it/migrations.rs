use std::time::Duration;

use keel::store::migrate::{MigrateError, Migrator, State};
use keel_testkit::TestDb;
use secrecy::SecretString;

fn migrator(db: &keel_testkit::TestDb) -> Migrator {
    Migrator::new(
        &SecretString::from(db.url().to_string()),
        Duration::from_secs(60),
    )
    .unwrap()
}

keel_testkit::engine_test!(up_applies_everything_once);
async fn up_applies_everything_once(db: TestDb) {
    let m = migrator(&db);
    let total = m.migrations().len();
    assert_eq!(
        m.status()
            .await
            .unwrap()
            .iter()
            .filter(|s| s.state == State::Pending)
            .count(),
        total
    );
    assert_eq!(m.up(false).await.unwrap().len(), total);
    assert!(
        m.up(false).await.unwrap().is_empty(),
        "a second up applies nothing"
    );
    assert!(m
        .status()
        .await
        .unwrap()
        .iter()
        .all(|s| s.state == State::Applied && s.applied_at.is_some()));
    assert!(m.verify().await.unwrap().is_clean());
}

keel_testkit::engine_test!(dry_run_changes_nothing);
async fn dry_run_changes_nothing(db: TestDb) {
    let m = migrator(&db);
    let plan = m.up(true).await.unwrap();
    assert_eq!(plan.len(), m.migrations().len());
    assert!(m
        .status()
        .await
        .unwrap()
        .iter()
        .all(|s| s.state == State::Pending));
    m.up(false).await.unwrap();
    assert_eq!(m.down(0, true).await.unwrap().len(), m.migrations().len());
    assert!(m.verify().await.unwrap().is_clean());
}

keel_testkit::engine_test!(concurrent_runners_apply_each_migration_once);
async fn concurrent_runners_apply_each_migration_once(db: TestDb) {
    let runners: Vec<_> = (0..4)
        .map(|_| {
            let m = migrator(&db);
            tokio::spawn(async move { m.up(false).await.map(|applied| applied.len()) })
        })
        .collect();
    let mut applied = 0;
    for runner in runners {
        applied += runner.await.unwrap().unwrap();
    }
    let m = migrator(&db);
    assert_eq!(applied, m.migrations().len());
    assert_eq!(
        db.scalar("SELECT count(*) FROM keel_migrations").await as usize,
        m.migrations().len()
    );
}

keel_testkit::engine_test!(down_and_up_round_trip);
async fn down_and_up_round_trip(db: TestDb) {
    let m = migrator(&db);
    m.up(false).await.unwrap();
    let now = if db.is_postgres() { "now()" } else { "0" };
    db.execute(&format!(
            "INSERT INTO users (id, tenant_id, created_at, last_seen_at) VALUES ('u1', 't1', {now}, {now})"
        ))
        .await;
    let reverted = m.down(0, false).await.unwrap();
    assert_eq!(reverted.len(), m.migrations().len());
    assert!(m
        .status()
        .await
        .unwrap()
        .iter()
        .all(|s| s.state == State::Pending));
    let report = m.verify().await.unwrap();
    assert_eq!(report.pending.len(), m.migrations().len());
    m.up(false).await.unwrap();
    assert!(m.verify().await.unwrap().is_clean());
    assert_eq!(db.scalar("SELECT count(*) FROM users").await, 0);
}

keel_testkit::engine_test!(verify_names_a_dropped_table);
async fn verify_names_a_dropped_table(db: TestDb) {
    let m = migrator(&db);
    m.up(false).await.unwrap();
    db.execute("DROP TABLE audit_log").await;
    let report = m.verify().await.unwrap();
    assert!(!report.is_clean());
    assert!(
        report.missing.contains(&"table audit_log".to_string()),
        "{:?}",
        report.missing
    );
    assert!(
        report
            .missing
            .contains(&"index audit_log_at_idx".to_string()),
        "{:?}",
        report.missing
    );
}

keel_testkit::engine_test!(an_edited_migration_is_refused);
async fn an_edited_migration_is_refused(db: TestDb) {
    let m = migrator(&db);
    m.up(false).await.unwrap();
    db.execute("UPDATE keel_migrations SET checksum = 'edited' WHERE version = 1")
        .await;
    assert!(matches!(
        m.up(false).await,
        Err(MigrateError::Modified { version: 1, .. })
    ));
    assert_eq!(m.status().await.unwrap()[0].state, State::Modified);
    assert_eq!(m.verify().await.unwrap().modified, vec![1]);
}

keel_testkit::engine_test!(a_newer_database_is_refused);
async fn a_newer_database_is_refused(db: TestDb) {
    let m = migrator(&db);
    m.up(false).await.unwrap();
    let now = if db.is_postgres() { "now()" } else { "0" };
    db.execute(&format!(
            "INSERT INTO keel_migrations (version, name, checksum, applied_at) VALUES (9999, '9999_future', 'x', {now})"
        ))
        .await;
    assert!(matches!(
        m.up(false).await,
        Err(MigrateError::Unknown { version: 9999, .. })
    ));
    assert!(matches!(
        m.down(0, false).await,
        Err(MigrateError::Unknown { version: 9999, .. })
    ));
    assert_eq!(m.verify().await.unwrap().unknown, vec![9999]);
}

keel_testkit::engine_test!(down_to_an_unknown_version_is_refused);
async fn down_to_an_unknown_version_is_refused(db: TestDb) {
    let m = migrator(&db);
    assert!(matches!(
        m.down(42, false).await,
        Err(MigrateError::NoSuchVersion(42))
    ));
}
