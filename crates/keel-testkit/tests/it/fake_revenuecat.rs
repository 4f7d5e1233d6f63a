//! The fake RevenueCat queried over real HTTP with reqwest.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use keel_testkit::FakeRevenueCat;

const KEY: &str = "sk_test_fake";

/// GETs `/v1/subscribers/{encoded_id}` with the given bearer key; returns (status, JSON body).
async fn get(rc: &FakeRevenueCat, encoded_id: &str, key: Option<&str>) -> (u16, Value) {
    let mut request =
        reqwest::Client::new().get(format!("{}/v1/subscribers/{encoded_id}", rc.url()));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

#[tokio::test]
async fn known_subscriber_gets_200_with_entitlements_and_subscriptions() {
    let rc = FakeRevenueCat::start(KEY).await;
    let expires = Utc.with_ymd_and_hms(2099, 11, 22, 10, 0, 0).unwrap();
    rc.set_entitlement("user-1", "pro", "com.app.monthly", Some(expires));
    rc.set_will_renew("user-1", "com.app.monthly", false);

    let (status, body) = get(&rc, "user-1", Some(KEY)).await;
    assert_eq!(status, 200);
    assert!(body["request_date"].as_str().unwrap().ends_with('Z'));
    assert!(body["request_date_ms"].as_i64().unwrap() > 0);
    let sub = &body["subscriber"];
    assert_eq!(sub["original_app_user_id"], "user-1");
    assert_eq!(sub["management_url"], Value::Null);
    assert_eq!(sub["other_purchases"], json!({}));
    assert_eq!(sub["subscriber_attributes"], json!({}));
    let pro = &sub["entitlements"]["pro"];
    assert_eq!(pro["expires_date"], "2099-11-22T10:00:00Z");
    assert_eq!(pro["grace_period_expires_date"], Value::Null);
    assert_eq!(pro["product_identifier"], "com.app.monthly");
    let bought = pro["purchase_date"].as_str().unwrap();
    assert!(
        bought.parse::<chrono::DateTime<Utc>>().unwrap() < Utc::now(),
        "{bought}"
    );
    let monthly = &sub["subscriptions"]["com.app.monthly"];
    assert_eq!(monthly["expires_date"], "2099-11-22T10:00:00Z");
    assert_eq!(monthly["period_type"], "normal");
    assert_eq!(monthly["store"], "app_store");
    assert_eq!(monthly["ownership_type"], "PURCHASED");
    assert_eq!(monthly["price"], json!({"amount": 4.99, "currency": "USD"}));
    assert!(monthly["unsubscribe_detected_at"].is_string());

    rc.set_will_renew("user-1", "com.app.monthly", true);
    let (_, body) = get(&rc, "user-1", Some(KEY)).await;
    let monthly = &body["subscriber"]["subscriptions"]["com.app.monthly"];
    assert_eq!(monthly["unsubscribe_detected_at"], Value::Null);
    assert_eq!(rc.requests(), 2);
}

#[tokio::test]
async fn lifetime_entitlement_has_a_null_expiry() {
    let rc = FakeRevenueCat::start(KEY).await;
    rc.set_entitlement("user-1", "pro", "com.app.lifetime", None);
    let (_, body) = get(&rc, "user-1", Some(KEY)).await;
    let sub = &body["subscriber"];
    assert_eq!(sub["entitlements"]["pro"]["expires_date"], Value::Null);
    assert_eq!(sub["subscriptions"], json!({}));
    assert_eq!(
        sub["non_subscriptions"]["com.app.lifetime"][0]["store"],
        "app_store"
    );
}

#[tokio::test]
async fn unknown_subscriber_is_created_with_201_then_found() {
    let rc = FakeRevenueCat::start(KEY).await;
    let (status, body) = get(&rc, "new-user", Some(KEY)).await;
    assert_eq!(status, 201);
    assert_eq!(body["subscriber"]["original_app_user_id"], "new-user");
    assert_eq!(body["subscriber"]["entitlements"], json!({}));
    assert_eq!(body["subscriber"]["subscriptions"], json!({}));
    assert_eq!(get(&rc, "new-user", Some(KEY)).await.0, 200);

    rc.clear("new-user");
    assert_eq!(get(&rc, "new-user", Some(KEY)).await.0, 201);
}

#[tokio::test]
async fn wrong_or_missing_key_gets_401() {
    let rc = FakeRevenueCat::start(KEY).await;
    let invalid = json!({"code": 7225, "message": "Invalid API key."});
    assert_eq!(
        get(&rc, "u", Some("sk_other")).await,
        (401, invalid.clone())
    );
    assert_eq!(get(&rc, "u", None).await, (401, invalid));
    assert_eq!(rc.requests(), 2);
}

#[tokio::test]
async fn fail_with_answers_every_request_until_cleared() {
    let rc = FakeRevenueCat::start(KEY).await;
    rc.fail_with(Some(503));
    let (status, body) = get(&rc, "u", Some(KEY)).await;
    assert_eq!(status, 503);
    assert_eq!(body["code"], 503);
    assert_eq!(body["message"], "Service Unavailable");
    assert_eq!(get(&rc, "u", None).await.0, 503);
    rc.fail_with(None);
    assert_eq!(get(&rc, "u", Some(KEY)).await.0, 201);
}

#[tokio::test]
async fn encoded_ids_are_decoded_and_the_raw_path_kept() {
    let rc = FakeRevenueCat::start(KEY).await;
    rc.set_entitlement("$RCAnonymousID:abc", "pro", "p", Some(Utc::now()));
    rc.set_entitlement("user 1/2", "pro", "p", Some(Utc::now()));

    assert_eq!(get(&rc, "%24RCAnonymousID%3Aabc", Some(KEY)).await.0, 200);
    assert_eq!(
        rc.last_path().as_deref(),
        Some("/v1/subscribers/%24RCAnonymousID%3Aabc")
    );
    let (status, body) = get(&rc, "user%201%2F2", Some(KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(body["subscriber"]["original_app_user_id"], "user 1/2");
    assert_eq!(
        rc.last_path().as_deref(),
        Some("/v1/subscribers/user%201%2F2")
    );
}

#[tokio::test]
async fn delay_slows_every_answer() {
    let rc = FakeRevenueCat::start(KEY).await;
    rc.delay(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(get(&rc, "u", Some(KEY)).await.0, 201);
    assert!(started.elapsed() >= Duration::from_millis(300));
}
