//! The statements of `storage_objects` on both engines.

use chrono::{DateTime, Duration, TimeZone, Utc};
use keel::store::storage::StoredObject;
use keel_testkit::{engine_test, TestApp, TestDb};

/// A day from now, in whole seconds: ahead of the app's own cleanup, which runs as it starts.
fn base() -> DateTime<Utc> {
    let tomorrow = Utc::now() + Duration::days(1);
    Utc.timestamp_opt(tomorrow.timestamp(), 0).unwrap()
}

fn object(at: DateTime<Utc>, id: &str, user: Option<&str>, key: &str, state: &str) -> StoredObject {
    StoredObject {
        id: id.into(),
        user_id: user.map(str::to_string),
        key: key.into(),
        content_type: "audio/mpeg".into(),
        size: 100,
        state: state.into(),
        visibility: "private".into(),
        checksum: None,
        created_at: at,
        confirmed_at: None,
        expires_at: (state == "pending").then(|| at + Duration::hours(1)),
    }
}

engine_test!(objects_are_recorded_confirmed_listed_and_expired);
async fn objects_are_recorded_confirmed_listed_and_expired(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let store = &app.services().db;
    let at = base();
    store
        .insert_storage_object(&object(at, "a", Some("u1"), "users/x/a", "pending"))
        .await
        .unwrap();
    store
        .insert_storage_object(&object(at, "b", Some("u1"), "users/x/b", "confirmed"))
        .await
        .unwrap();
    store
        .insert_storage_object(&object(at, "c", None, "app/c", "confirmed"))
        .await
        .unwrap();

    assert!(store
        .user_storage_object("u2", "a")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store.user_storage_objects("u1", false).await.unwrap().len(),
        1
    );
    assert_eq!(
        store.user_storage_objects("u1", true).await.unwrap().len(),
        2
    );
    let expired = store
        .expired_storage_objects(at + Duration::hours(2), 10)
        .await
        .unwrap();
    assert_eq!(
        expired.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        ["a"]
    );
    assert!(store
        .expired_storage_objects(at, 10)
        .await
        .unwrap()
        .is_empty());

    assert!(store
        .confirm_storage_object("a", 90, Some("abc"), None, at)
        .await
        .unwrap());
    assert!(!store
        .confirm_storage_object("a", 90, None, None, at)
        .await
        .unwrap());
    let a = store.user_storage_object("u1", "a").await.unwrap().unwrap();
    assert_eq!(
        (a.state.as_str(), a.size, a.checksum.as_deref()),
        ("confirmed", 90, Some("abc"))
    );
    assert_eq!(a.confirmed_at, Some(at));
    assert!(a.expires_at.is_none());

    let usage = store.storage_usage().await.unwrap();
    assert_eq!(usage[0].user_id.as_deref(), Some("u1"));
    assert_eq!((usage[0].objects, usage[0].bytes), (2, 190));
    assert_eq!(store.storage_objects_page("", 2).await.unwrap().len(), 2);
    assert_eq!(
        store.storage_objects_page("users/x/a", 10).await.unwrap()[0].key,
        "users/x/b"
    );

    // Recording a key again replaces it.
    let mut again = object(at, "d", None, "app/c", "confirmed");
    again.size = 7;
    store.insert_storage_object(&again).await.unwrap();
    assert_eq!(
        store
            .storage_object_by_key("app/c")
            .await
            .unwrap()
            .unwrap()
            .id,
        "d"
    );
    assert!(store.delete_storage_object("app/c").await.unwrap());
    assert!(!store.delete_storage_object("app/c").await.unwrap());
}
