//! The library API for Rust handlers and jobs: put, get, url, delete, recorded with their
//! checksum; a public object's URL is the CDN's.

use keel::storage::{PutOptions, StorageError};
use keel_testkit::TestDb;

use super::{both_backends, bytes, fetch, Fixture};

both_backends!(the_library_puts_gets_links_and_deletes);

async fn the_library_puts_gets_links_and_deletes(fx: Fixture) {
    let app = fx.app(TestDb::sqlite()).spawn().await;
    let storage = &app.services().storage;
    let audio = bytes(120_000, 11);
    let object = storage
        .put("episodes/1.mp3", audio.clone(), "audio/mpeg")
        .await
        .unwrap();
    assert_eq!(object.size, 120_000);
    assert_eq!(
        object.checksum.as_deref(),
        Some(keel::storage::sha256_hex(&audio).as_str())
    );
    assert!(fx.holds("episodes/1.mp3"));
    assert_eq!(storage.get("episodes/1.mp3").await.unwrap().to_vec(), audio);
    let url = storage.url("episodes/1.mp3", None).await.unwrap();
    assert!(!url.starts_with(&fx.cdn.base_url()));
    let url = if url.starts_with('/') {
        app.url(&url)
    } else {
        url
    };
    assert_eq!(fetch(&url).await, (200, audio));

    let public = PutOptions {
        public: true,
        ..PutOptions::default()
    };
    storage
        .put_with("covers/1.png", bytes(900, 12), "image/png", public)
        .await
        .unwrap();
    let cdn = storage.url("covers/1.png", None).await.unwrap();
    assert_eq!(cdn, format!("{}/covers/1.png", fx.cdn.base_url()));
    assert_eq!(fetch(&cdn).await, (200, bytes(900, 12)));

    storage.delete("episodes/1.mp3").await.unwrap();
    assert!(!fx.holds("episodes/1.mp3"));
    assert!(matches!(
        storage.get("episodes/1.mp3").await,
        Err(StorageError::NotFound)
    ));
    assert!(matches!(
        storage.put("../outside", bytes(1, 1), "text/plain").await,
        Err(StorageError::InvalidKey(_))
    ));
}
