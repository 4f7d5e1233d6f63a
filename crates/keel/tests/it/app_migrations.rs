//! An application's migrations through `Migrator::for_app`: recorded in `keel_app_migrations`
//! beside Keel's history, applied once by runners starting together, reverted and checked like
//! Keel's, and refused when their versions are out of order.

use std::time::Duration;

use keel::store::migrate::{AppMigrations, MigrateError, Migration, Migrator, State};
use keel_testkit::TestDb;
use secrecy::SecretString;

const APP: AppMigrations = AppMigrations::portable(&[
    Migration {
        version: 1,
        name: "0001_notes",
        up: "CREATE TABLE notes (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, body TEXT NOT NULL);",
        down: "DROP TABLE notes;",
    },
    Migration {
        version: 2,
        name: "0002_notes_by_user",
        up: "CREATE INDEX notes_by_user ON notes (user_id);",
        down: "DROP INDEX notes_by_user;",
    },
]);

fn url(db: &TestDb) -> SecretString {
    SecretString::from(db.url().to_string())
}

fn app(db: &TestDb) -> Migrator {
    Migrator::for_app(&url(db), Duration::from_secs(60), &APP).unwrap()
}

fn keel(db: &TestDb) -> Migrator {
    Migrator::new(&url(db), Duration::from_secs(60)).unwrap()
}

keel_testkit::engine_test!(app_migrations_are_recorded_in_their_own_history);
async fn app_migrations_are_recorded_in_their_own_history(db: TestDb) {
    let keel_total = keel(&db).up(false).await.unwrap().len();
    let runners: Vec<_> = (0..4)
        .map(|_| {
            let m = app(&db);
            tokio::spawn(async move { m.up(false).await.map(|applied| applied.len()) })
        })
        .collect();
    let mut applied = 0;
    for runner in runners {
        applied += runner.await.unwrap().unwrap();
    }
    assert_eq!(applied, 2, "each application migration is applied once");
    let m = app(&db);
    assert_eq!(m.history(), "keel_app_migrations");
    assert_eq!(
        db.scalar("SELECT count(*) FROM keel_app_migrations").await,
        2
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM keel_migrations").await as usize,
        keel_total,
        "Keel's history holds Keel's migrations only"
    );
    assert!(m
        .status()
        .await
        .unwrap()
        .iter()
        .all(|s| s.state == State::Applied));
    assert!(m.verify().await.unwrap().is_clean());
    assert!(keel(&db).verify().await.unwrap().is_clean());

    db.execute("DROP INDEX notes_by_user").await;
    let report = m.verify().await.unwrap();
    assert_eq!(report.missing, vec!["index notes_by_user".to_string()]);
    db.execute("CREATE INDEX notes_by_user ON notes (user_id)")
        .await;

    assert_eq!(m.down(1, false).await.unwrap().len(), 1);
    assert_eq!(
        db.scalar("SELECT count(*) FROM keel_app_migrations").await,
        1
    );
    assert!(keel(&db).verify().await.unwrap().is_clean());
    assert_eq!(m.up(false).await.unwrap().len(), 1);

    db.execute("UPDATE keel_app_migrations SET checksum = 'edited' WHERE version = 2")
        .await;
    assert!(matches!(
        m.up(false).await,
        Err(MigrateError::Modified { version: 2, .. })
    ));
}

#[test]
fn versions_out_of_order_are_refused() {
    const BACKWARDS: AppMigrations = AppMigrations::portable(&[
        Migration {
            version: 2,
            name: "0002_b",
            up: "",
            down: "",
        },
        Migration {
            version: 1,
            name: "0001_a",
            up: "",
            down: "",
        },
    ]);
    let url = SecretString::from("sqlite://unused.db".to_string());
    let refused = Migrator::for_app(&url, Duration::from_secs(1), &BACKWARDS);
    assert!(matches!(refused, Err(MigrateError::Invalid(m)) if m.contains("0001_a")));
}
