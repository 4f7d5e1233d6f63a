//! The built-in `storage.cleanup` job removes an upload not confirmed within `abandoned_after`
//! and a temporary object past its end, from the backend and the records; confirmed files and
//! lasting objects stay.

use std::time::Duration;

use keel::storage::PutOptions;
use keel_testkit::{admin, TestDb};
use reqwest::Method;
use serde_json::json;

use super::{both_backends, bytes, put_bytes, start_upload, upload_file, Fixture};

both_backends!(cleanup_removes_abandoned_uploads_and_expired_objects);

async fn cleanup_removes_abandoned_uploads_and_expired_objects(fx: Fixture) {
    cleanup_on(fx, TestDb::sqlite()).await;
}

/// The same on Postgres, with the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_abandoned_uploads_and_expired_objects_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    cleanup_on(Fixture::s3().await, db).await;
}

async fn cleanup_on(fx: Fixture, db: TestDb) {
    let app = fx.app(db).spawn().await;
    let kept = upload_file(&app, "hal", &bytes(800, 1), false).await;
    let abandoned = start_upload(&app, "hal", "audio/mpeg", 600, false)
        .await
        .ok(201)
        .clone();
    assert_eq!(put_bytes(&abandoned, bytes(600, 2)).await / 100, 2);
    let storage = &app.services().storage;
    let temporary = PutOptions {
        expires_in: Some(Duration::from_secs(600)),
        ..PutOptions::default()
    };
    storage
        .put_with("tmp/preview.mp3", bytes(100, 3), "audio/mpeg", temporary)
        .await
        .unwrap();
    storage
        .put("lasting/cover.png", bytes(100, 4), "image/png")
        .await
        .unwrap();
    let abandoned_key = abandoned["key"].as_str().unwrap();

    let cleanup = || async {
        let enqueued = admin(
            &app,
            Method::POST,
            "/admin/api/jobs",
            Some(&json!({"kind": "storage.cleanup"})),
        )
        .await;
        enqueued.ok(201);
        app.run_pending_jobs().await;
    };
    // Before their time nothing goes.
    cleanup().await;
    assert!(fx.holds(abandoned_key) && fx.holds("tmp/preview.mp3"));

    // After ten minutes the temporary object goes; after the hour, the abandoned upload.
    app.clock().advance(Duration::from_secs(601));
    cleanup().await;
    assert!(!fx.holds("tmp/preview.mp3"));
    assert!(fx.holds(abandoned_key));
    app.clock().advance(Duration::from_secs(3600));
    cleanup().await;
    assert!(!fx.holds(abandoned_key));
    let pending = app
        .db
        .scalar("SELECT count(*) FROM storage_objects WHERE state = 'pending'")
        .await;
    assert_eq!(pending, 0);
    assert!(fx.holds(kept["key"].as_str().unwrap()));
    assert!(fx.holds("lasting/cover.png"));
}
