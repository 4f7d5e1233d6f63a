//! Users' direct uploads: through the presigned URL, confirmed with the declared size, listed and
//! downloaded by signed URL or, for a public file, by CDN URL; limits refused as problems;
//! another user's file refused.

use keel_testkit::TestDb;
use reqwest::Method;
use serde_json::json;

use super::{both_backends, bytes, call, fetch, put_bytes, start_upload, upload_file, Fixture};

both_backends!(
    an_upload_is_confirmed_listed_and_downloaded,
    limits_are_refused_as_problems,
    another_users_file_is_refused
);

async fn an_upload_is_confirmed_listed_and_downloaded(fx: Fixture) {
    let app = fx.app(TestDb::sqlite()).spawn().await;
    let content = bytes(70_000, 1);
    let upload = start_upload(&app, "ana", "audio/mpeg", content.len(), false)
        .await
        .ok(201)
        .clone();
    let key = upload["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("users/"), "{upload}");
    assert!(upload["expires_at"].is_string(), "{upload}");
    assert_eq!(upload["headers"]["content-type"], "audio/mpeg");
    if fx.is_s3() {
        assert!(
            upload["url"].as_str().unwrap().contains("X-Amz-Signature="),
            "{upload}"
        );
    }
    let id = upload["id"].as_str().unwrap();
    let path = format!("/v1/me/files/{id}");
    // Pending: shown without a URL, not listed.
    let pending = call(&app, "ana", Method::GET, &path, None).await;
    assert_eq!(pending.ok(200)["state"], "pending");
    assert!(pending.body["url"].is_null());
    let listed = call(&app, "ana", Method::GET, "/v1/me/files", None).await;
    assert_eq!(listed.ok(200)["files"], json!([]));

    assert_eq!(put_bytes(&upload, content.clone()).await / 100, 2);
    assert!(fx.holds(&key), "the backend holds {key}");
    let confirm = format!("{path}/confirm");
    let confirmed = call(&app, "ana", Method::POST, &confirm, None).await;
    let file = confirmed.ok(200).clone();
    assert_eq!(
        (&file["state"], &file["size"], &file["visibility"]),
        (&json!("confirmed"), &json!(70_000), &json!("private"))
    );
    // Confirming again answers the same file.
    assert_eq!(
        call(&app, "ana", Method::POST, &confirm, None)
            .await
            .ok(200)["id"],
        file["id"]
    );

    let listed = call(&app, "ana", Method::GET, "/v1/me/files", None).await;
    let files = listed.ok(200)["files"].as_array().unwrap().clone();
    assert_eq!(files.len(), 1, "{files:?}");
    let url = files[0]["url"].as_str().unwrap();
    assert!(
        !url.starts_with(&fx.cdn.base_url()),
        "a private file is signed, not on the CDN"
    );
    assert!(files[0]["url_expires_at"].is_string());
    assert_eq!(fetch(url).await, (200, content.clone()));
    let one = call(&app, "ana", Method::GET, &path, None).await;
    assert_eq!(
        fetch(one.ok(200)["url"].as_str().unwrap()).await,
        (200, content)
    );

    // A public file is served at the CDN's URL, which does not expire.
    let public = bytes(5_000, 2);
    let file = upload_file(&app, "ana", &public, true).await;
    let url = file["url"].as_str().unwrap();
    assert_eq!(
        url,
        format!("{}/{}", fx.cdn.base_url(), file["key"].as_str().unwrap())
    );
    assert!(file["url_expires_at"].is_null());
    assert_eq!(fetch(url).await, (200, public));

    // Deleting removes the object from the backend.
    let deleted = call(&app, "ana", Method::DELETE, &path, None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert!(!fx.holds(&key));
    call(&app, "ana", Method::GET, &path, None)
        .await
        .problem(404, "not-found");
}

async fn limits_are_refused_as_problems(fx: Fixture) {
    let app = fx.app(TestDb::sqlite()).spawn().await;
    let upload = |content_type: &'static str, size: usize| {
        let app = &app;
        async move { start_upload(app, "bo", content_type, size, false).await }
    };
    upload("video/mp4", 10)
        .await
        .problem(415, "unsupported-media-type");
    upload("audio/mpeg", 1_000_001)
        .await
        .problem(413, "payload-too-large");
    upload("image/png", 10_001)
        .await
        .problem(413, "payload-too-large");
    upload("image/png", 10_000).await.ok(201);
    let zero = upload("audio/mpeg", 0).await;
    assert_eq!(
        zero.problem(422, "validation-failed")["errors"][0]["field"],
        "size"
    );
    let bad = upload("not a type", 10).await;
    assert_eq!(
        bad.problem(422, "validation-failed")["errors"][0]["field"],
        "content_type"
    );
    let extra = call(
        &app,
        "bo",
        Method::POST,
        "/v1/me/uploads",
        Some(json!({"content_type": "audio/mpeg", "size": 10, "key": "mine"})),
    )
    .await;
    assert_eq!(extra.status, 422, "{}", extra.text);

    // Confirming before anything was sent.
    let started = upload("audio/mpeg", 1_000).await.ok(201).clone();
    let confirm = format!("/v1/me/files/{}/confirm", started["id"].as_str().unwrap());
    call(&app, "bo", Method::POST, &confirm, None)
        .await
        .problem(409, "upload-incomplete");

    // More bytes than declared: Keel's own link refuses them as they stream; S3 stores them and
    // the confirmation refuses the size and removes the object.
    let key = started["key"].as_str().unwrap();
    let status = put_bytes(&started, bytes(1_500, 3)).await;
    if fx.is_s3() {
        assert_eq!(status, 200);
        assert!(fx.holds(key));
        let refused = call(&app, "bo", Method::POST, &confirm, None).await;
        refused.problem(422, "upload-size-mismatch");
        assert!(!fx.holds(key), "the wrong-sized upload was removed");
    } else {
        assert_eq!(status, 413);
        assert!(!fx.holds(key));
    }
    // Fewer bytes than declared are refused at confirmation on both backends.
    let status = put_bytes(&started, bytes(999, 3)).await;
    assert_eq!(status / 100, 2);
    call(&app, "bo", Method::POST, &confirm, None)
        .await
        .problem(422, "upload-size-mismatch");
    assert!(!fx.holds(key));
    // The right size, through the same link, is confirmed.
    assert_eq!(put_bytes(&started, bytes(1_000, 3)).await / 100, 2);
    assert_eq!(
        call(&app, "bo", Method::POST, &confirm, None).await.ok(200)["state"],
        "confirmed"
    );
}

async fn another_users_file_is_refused(fx: Fixture) {
    let app = fx.app(TestDb::sqlite()).spawn().await;
    let content = bytes(2_000, 4);
    let file = upload_file(&app, "cy", &content, false).await;
    let id = file["id"].as_str().unwrap();
    let path = format!("/v1/me/files/{id}");
    for (method, path) in [
        (Method::GET, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::POST, format!("{path}/confirm")),
    ] {
        call(&app, "dee", method, &path, None)
            .await
            .problem(404, "not-found");
    }
    assert_eq!(
        call(&app, "dee", Method::GET, "/v1/me/files", None)
            .await
            .ok(200)["files"],
        json!([])
    );
    let unauthenticated = app.get(&path).await;
    assert_eq!(unauthenticated.status(), 401);
    assert!(fx.holds(file["key"].as_str().unwrap()));
    let owner = call(&app, "cy", Method::GET, &path, None).await;
    assert_eq!(
        fetch(owner.ok(200)["url"].as_str().unwrap()).await,
        (200, content)
    );
}

/// Keel's own upload links name the content type to send; another is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filesystem_link_refuses_another_content_type() {
    let fx = Fixture::file().await;
    let app = fx.app(TestDb::sqlite()).spawn().await;
    let upload = start_upload(&app, "ian", "audio/mpeg", 10, false)
        .await
        .ok(201)
        .clone();
    let sent = keel_testkit::send(
        reqwest::Client::new()
            .put(upload["url"].as_str().unwrap())
            .header("content-type", "text/html")
            .body(vec![0u8; 10]),
    )
    .await;
    sent.problem(415, "unsupported-media-type");
    assert!(!fx.holds(upload["key"].as_str().unwrap()));
    assert_eq!(put_bytes(&upload, vec![0u8; 10]).await, 204);
}

/// With `PUBLIC_URL`, Keel's own links are built on it rather than on the request's Host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_links_are_built_on_public_url() {
    let fx = Fixture::file().await;
    let app = fx
        .app(TestDb::sqlite())
        .env("PUBLIC_URL", "https://api.example.com/")
        .spawn()
        .await;
    let upload = start_upload(&app, "lee", "audio/mpeg", 10, false)
        .await
        .ok(201)
        .clone();
    let url = upload["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://api.example.com/v1/storage/files/"),
        "{url}"
    );
    let without = Fixture::file().await;
    let app = without.app(TestDb::sqlite()).spawn().await;
    let upload = start_upload(&app, "lee", "audio/mpeg", 10, false)
        .await
        .ok(201)
        .clone();
    let url = upload["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/v1/storage/files/", app.base_url)),
        "{url}"
    );
}
