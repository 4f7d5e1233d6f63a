//! With CloudFront keys, a private file is served by the CDN through a CloudFront signed URL
//! (canned policy, RSA-SHA1), which the CDN checks: a changed or expired one is refused. Public
//! files keep the plain CDN URL.

use std::time::{Duration, Instant};

use keel_testkit::TestDb;

use super::{both_backends, bytes, fetch, upload_file, Fixture};

both_backends!(private_files_are_served_through_cloudfront_signed_urls);

async fn private_files_are_served_through_cloudfront_signed_urls(fx: Fixture) {
    let fx = fx.with_cloudfront().await;
    let app = fx.app(TestDb::sqlite()).spawn().await;
    let content = bytes(6_000, 21);
    let file = upload_file(&app, "jo", &content, false).await;
    let url = file["url"].as_str().unwrap().to_string();
    let key = file["key"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/{key}?Expires=", fx.cdn.base_url())),
        "{url}"
    );
    assert!(url.contains("&Key-Pair-Id=K2JCJMDEHXQW5F"), "{url}");
    assert!(file["url_expires_at"].is_string());
    assert_eq!(fetch(&url).await, (200, content.clone()));

    // A changed signature, or the signature moved to another object, is refused by the CDN.
    let at = url.find("Signature=").unwrap() + "Signature=".len();
    let mut changed: Vec<char> = url.chars().collect();
    changed[at + 3] = if changed[at + 3] == 'A' { 'B' } else { 'A' };
    let changed: String = changed.into_iter().collect();
    assert_eq!(fetch(&changed).await.0, 403);
    let other = upload_file(&app, "jo", &bytes(6_000, 22), false).await;
    let moved = url.replace(key, other["key"].as_str().unwrap());
    assert_eq!(fetch(&moved).await.0, 403);

    // A public file keeps its plain CDN URL.
    let public = upload_file(&app, "jo", &bytes(700, 23), true).await;
    assert!(!public["url"].as_str().unwrap().contains("Signature="));
    assert_eq!(fetch(public["url"].as_str().unwrap()).await.0, 200);

    // A short-lived URL from the library stops working once its second passes.
    let short = app
        .services()
        .storage
        .url(key, Some(Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(short.contains("Signature="), "{short}");
    let started = Instant::now();
    while fetch(&short).await.0 != 403 {
        assert!(started.elapsed() < Duration::from_secs(20), "never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(fetch(&url).await, (200, content));
}
