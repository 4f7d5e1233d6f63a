//! A user's files in their export, with working signed URLs; their erasure removes every object
//! they stored (confirmed, pending, stored for them by the app) from the backend, and the rows.

use keel::storage::PutOptions;
use keel_testkit::TestDb;
use reqwest::Method;

use super::{both_backends, bytes, call, fetch, put_bytes, start_upload, upload_file, Fixture};

both_backends!(erasure_removes_every_object_of_the_user);

async fn erasure_removes_every_object_of_the_user(fx: Fixture) {
    erasure_on(fx, TestDb::sqlite()).await;
}

/// The same on Postgres, with the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_removes_every_object_of_the_user_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    erasure_on(Fixture::s3().await, db).await;
}

async fn erasure_on(fx: Fixture, db: TestDb) {
    let app = fx.app(db).spawn().await;
    let kept = upload_file(&app, "other", &bytes(1_000, 9), false).await;
    let confirmed = bytes(4_000, 8);
    let file = upload_file(&app, "gus", &confirmed, false).await;
    let pending = start_upload(&app, "gus", "audio/mpeg", 500, false)
        .await
        .ok(201)
        .clone();
    assert_eq!(put_bytes(&pending, bytes(500, 1)).await / 100, 2);
    let storage = &app.services().storage;
    let for_gus = PutOptions {
        user_id: Some("gus".into()),
        ..PutOptions::default()
    };
    storage
        .put_with("renders/gus-1.mp3", bytes(300, 2), "audio/mpeg", for_gus)
        .await
        .unwrap();

    let export = call(&app, "gus", Method::GET, "/v1/me/export", None).await;
    let files = export.ok(200)["files"].as_array().unwrap().clone();
    assert_eq!(files.len(), 3, "{files:?}");
    let listed = files.iter().find(|f| f["id"] == file["id"]).unwrap();
    assert_eq!(
        fetch(listed["url"].as_str().unwrap()).await,
        (200, confirmed)
    );
    let keys = [
        file["key"].as_str().unwrap(),
        pending["key"].as_str().unwrap(),
        "renders/gus-1.mp3",
    ];
    for key in keys {
        assert!(fx.holds(key), "{key}");
    }

    let erased = call(&app, "gus", Method::DELETE, "/v1/me", None).await;
    assert_eq!(erased.status, 202, "{}", erased.text);
    app.run_pending_jobs().await;
    for key in keys {
        assert!(!fx.holds(key), "{key} was erased");
    }
    let rows = app
        .db
        .scalar("SELECT count(*) FROM storage_objects WHERE user_id = 'gus'")
        .await;
    assert_eq!(rows, 0);
    // Another user's object stays.
    assert!(fx.holds(kept["key"].as_str().unwrap()));
}
