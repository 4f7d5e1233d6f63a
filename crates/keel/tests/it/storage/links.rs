//! Signed links hold only as signed and only until they expire: on S3 the server itself (s3s,
//! checking SigV4) refuses a changed or expired presigned URL; on the filesystem backend Keel
//! refuses its own. The app's services get links for any key with a service token.

use std::time::{Duration, Instant};

use keel_testkit::{send, TestDb};
use serde_json::json;

use super::{both_backends, bytes, fetch, upload_file, Fixture, SERVICE};

both_backends!(
    changed_and_expired_links_are_refused,
    services_get_links_for_any_key
);

/// `url` with one character of its signature changed.
fn tamper_signature(url: &str) -> String {
    let marker = if url.contains("X-Amz-Signature=") {
        "X-Amz-Signature="
    } else {
        "."
    };
    let at = url.rfind(marker).expect("a signature") + marker.len();
    let mut chars: Vec<char> = url.chars().collect();
    chars[at] = if chars[at] == 'a' { 'b' } else { 'a' };
    chars.into_iter().collect()
}

async fn link(app: &keel_testkit::TestApp, body: serde_json::Value) -> keel_testkit::Reply {
    send(
        app.client
            .post(app.url("/v1/storage/urls"))
            .bearer_auth(SERVICE)
            .json(&body),
    )
    .await
}

async fn record(app: &keel_testkit::TestApp, body: serde_json::Value) -> keel_testkit::Reply {
    send(
        app.client
            .post(app.url("/v1/storage/objects"))
            .bearer_auth(SERVICE)
            .json(&body),
    )
    .await
}

async fn changed_and_expired_links_are_refused(fx: Fixture) {
    let app = fx.app(TestDb::sqlite()).spawn().await;
    let content = bytes(3_000, 5);
    let file = upload_file(&app, "eve", &content, false).await;
    let url = file["url"].as_str().unwrap().to_string();
    assert_eq!(fetch(&url).await, (200, content.clone()));

    // A changed signature.
    let (status, body) = fetch(&tamper_signature(&url)).await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    let text = String::from_utf8_lossy(&body).to_string();
    // Another key under the same signature (another user's object, say).
    let other = upload_file(&app, "fay", &bytes(3_000, 6), false).await;
    let (eve_key, fay_key) = (
        file["key"].as_str().unwrap(),
        other["key"].as_str().unwrap(),
    );
    if fx.is_s3() {
        assert!(
            text.contains("SignatureDoesNotMatch"),
            "refused by s3s: {text}"
        );
        let swapped = url.replace(eve_key, fay_key);
        assert_ne!(swapped, url);
        let (status, body) = fetch(&swapped).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 403, "{text}");
        assert!(
            text.contains("SignatureDoesNotMatch"),
            "refused by s3s: {text}"
        );
        // No signature at all.
        let bare = url.split('?').next().unwrap();
        let (status, body) = fetch(bare).await;
        assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    } else {
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            problem["type"], "https://keel.dev/problems/invalid-link",
            "{problem}"
        );
    }

    // An expired link: S3 checks the time itself (its clock is the real one), so the link lives
    // one second and the server is asked until it refuses; Keel's links follow the app's clock.
    let short = link(
        &app,
        json!({"method": "GET", "key": eve_key, "expires_in": 1}),
    )
    .await;
    let short_url = short.ok(200)["url"].as_str().unwrap().to_string();
    if fx.is_s3() {
        let started = Instant::now();
        let text = loop {
            let (status, body) = fetch(&short_url).await;
            if status == 403 {
                break String::from_utf8_lossy(&body).to_string();
            }
            assert_eq!(status, 200);
            assert!(started.elapsed() < Duration::from_secs(20), "never expired");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(
            text.contains("AccessDenied") && text.contains("expired"),
            "refused by s3s: {text}"
        );
    } else {
        assert_eq!(fetch(&short_url).await, (200, content.clone()));
        app.clock().advance(Duration::from_secs(2));
        let (status, body) = fetch(&short_url).await;
        assert_eq!(status, 403);
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            problem["type"], "https://keel.dev/problems/expired-link",
            "{problem}"
        );
    }
    // The long-lived link still works.
    assert_eq!(fetch(&url).await, (200, content));
}

async fn services_get_links_for_any_key(fx: Fixture) {
    let app = fx.app(TestDb::sqlite()).spawn().await;
    // A job in any language stores its output through a presigned PUT...
    let put = link(
        &app,
        json!({"method": "PUT", "key": "jobs/render/42.mp3", "content_type": "audio/mpeg"}),
    )
    .await;
    let put = put.ok(200).clone();
    assert_eq!(put["method"], "PUT");
    let output = bytes(40_000, 7);
    let status = reqwest::Client::new()
        .put(put["url"].as_str().unwrap())
        .header("content-type", "audio/mpeg")
        .body(output.clone())
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
    assert!(fx.holds("jobs/render/42.mp3"));
    // ...and fetches it through a presigned GET.
    let get = link(&app, json!({"method": "GET", "key": "jobs/render/42.mp3"})).await;
    assert_eq!(
        fetch(get.ok(200)["url"].as_str().unwrap()).await,
        (200, output.clone())
    );

    // Recorded for a user, public: it is among their files, at its CDN URL.
    let recorded = record(
        &app,
        json!({"key": "jobs/render/42.mp3", "content_type": "audio/mpeg", "user_id": "kim", "public": true}),
    )
    .await;
    let recorded = recorded.ok(201).clone();
    assert_eq!(
        (&recorded["size"], &recorded["state"]),
        (&json!(40_000), &json!("confirmed"))
    );
    let cdn = format!("{}/jobs/render/42.mp3", fx.cdn.base_url());
    assert_eq!(recorded["url"], json!(cdn));
    assert_eq!(fetch(&cdn).await, (200, output));
    let files = super::call(&app, "kim", reqwest::Method::GET, "/v1/me/files", None).await;
    assert_eq!(files.ok(200)["files"][0]["id"], recorded["id"]);
    record(&app, json!({"key": "jobs/render/none.mp3"}))
        .await
        .problem(404, "not-found");
    for body in [
        json!({"key": "a/../b"}),
        json!({"key": "jobs/render/42.mp3", "content_type": "nope"}),
        json!({"key": "jobs/render/42.mp3", "user_id": ""}),
        json!({"key": "jobs/render/42.mp3", "expires_in": 0}),
    ] {
        record(&app, body).await.problem(422, "validation-failed");
    }

    for body in [
        json!({"method": "POST", "key": "a"}),
        json!({"method": "GET", "key": "../etc/passwd"}),
        json!({"method": "GET", "key": "a", "expires_in": 0}),
        json!({"method": "GET", "key": "a", "expires_in": 604_801}),
        json!({"method": "PUT", "key": "a", "content_type": "nope"}),
    ] {
        link(&app, body.clone())
            .await
            .problem(422, "validation-failed");
    }
    let anonymous = send(
        app.client
            .post(app.url("/v1/storage/urls"))
            .json(&json!({"method": "GET", "key": "a"})),
    )
    .await;
    anonymous.unauthorized();
    let user = send(
        app.client
            .post(app.url("/v1/storage/urls"))
            .bearer_auth(super::token("eve"))
            .json(&json!({"method": "GET", "key": "a"})),
    )
    .await;
    user.unauthorized();
}
