//! `recipes migrate`: the application's migration is applied after Keel's, recorded in its own
//! history (`keel_app_migrations`), listed by `status`, checked by `verify` and reverted alone.

use crate::common::recipes;
use keel_testkit::TestDb;

keel_testkit::engine_test!(the_app_migration_has_a_history_of_its_own);
async fn the_app_migration_has_a_history_of_its_own(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let env = [("DATABASE_URL", db.url())];
    let migrate = |args: &[&str]| {
        let mut full = vec!["migrate"];
        full.extend_from_slice(args);
        recipes(dir.path(), &env, &full)
    };

    let before = migrate(&["status", "--json"]);
    let before = before.assert_code(0).json();
    assert_eq!(
        before["app_migrations"][0]["name"], "0001_recipes",
        "{before}"
    );
    assert_eq!(before["app_migrations"][0]["state"], "pending", "{before}");
    assert_eq!(before["migrations"][0]["name"], "0001_core", "{before}");

    let up = migrate(&["up"]);
    up.assert_code(0);
    assert!(up.stdout.contains("applied 0001 0001_core"), "{up:#?}");
    assert!(
        up.stdout.contains("applied app 0001 0001_recipes"),
        "{up:#?}"
    );
    let keel_count = db.scalar("SELECT count(*) FROM keel_migrations").await;
    assert!(keel_count >= 3, "Keel's history: {keel_count}");
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM keel_app_migrations WHERE version = 1 AND name = '0001_recipes'"
        )
        .await,
        1
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM keel_migrations WHERE name = '0001_recipes'")
            .await,
        0,
        "the application's migration is not in Keel's history"
    );
    assert_eq!(db.scalar("SELECT count(*) FROM recipes").await, 0);

    let again = migrate(&["up"]);
    assert!(
        again.assert_code(0).stdout.contains("nothing to apply"),
        "{again:#?}"
    );
    let status = migrate(&["status"]);
    status.assert_code(0);
    let app_part = status
        .stdout
        .split("application migrations (keel_app_migrations):")
        .nth(1)
        .unwrap_or_else(|| panic!("{status:#?}"));
    assert!(
        app_part.contains("0001_recipes") && app_part.contains("applied"),
        "{status:#?}"
    );
    migrate(&["verify"]).assert_code(0);

    let down = migrate(&["down", "--app", "--to", "0"]);
    assert!(
        down.assert_code(0)
            .stdout
            .contains("reverted app 0001 0001_recipes"),
        "{down:#?}"
    );
    assert!(db.try_scalar("SELECT count(*) FROM recipes").await.is_err());
    assert_eq!(
        db.scalar("SELECT count(*) FROM keel_migrations").await,
        keel_count
    );
    let after = migrate(&["status", "--json"]);
    assert_eq!(
        after.assert_code(0).json()["app_migrations"][0]["state"],
        "pending"
    );
    let verify = migrate(&["verify"]);
    assert!(
        verify
            .assert_code(1)
            .stdout
            .contains("pending app migration 0001"),
        "{verify:#?}"
    );

    // A changed application migration is refused like a changed Keel one.
    migrate(&["up"]).assert_code(0);
    db.execute("UPDATE keel_app_migrations SET checksum = 'edited' WHERE version = 1")
        .await;
    let modified = migrate(&["up"]);
    modified.assert_code(1);
    assert!(modified.stderr.contains("0001_recipes"), "{modified:#?}");
}
