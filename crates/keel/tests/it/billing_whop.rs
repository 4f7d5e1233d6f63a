//! Whop webhooks end to end, from the fixtures (times moved to now): both signature schemes
//! refuse what they should and store nothing then; memberships grant in their company; order,
//! duplicates, rotation, sealing, replay and audit as for the other providers; and a delivery
//! signed by the Standard Webhooks reference library (Python) is accepted.

use crate::billing_support;

use std::sync::atomic::{AtomicU64, Ordering};

use billing_support::*;
use keel::billing::whop::sign_legacy;
use keel::crypto::standard_webhooks::WebhookSecret;
use keel_testkit::{TestApp, TestAppBuilder, TestDb};
use reqwest::StatusCode;
use serde_json::{json, Value};

mod reference_library;
mod schemes;

/// The dashboard secret, used as its raw bytes.
pub const WHOP_SECRET: &str = "ws_whop-dashboard-secret-for-tests-0123456789abcdef";
/// The secret before a rotation, still accepted.
pub const OLD_WHOP_SECRET: &str = "ws_old-whop-dashboard-secret-for-tests-012345678";
/// A secret Keel does not hold.
pub const OTHER_SECRET: &str = "ws_someone-elses-whop-secret-0123456789abcdef0";
pub const USER: &str = "user_Ab3Cd4Ef5Gh6";
pub const COMPANY: &str = "biz_K1aB2cD3eF4gH5";
const DAY_S: i64 = 86_400;
const FRESH: &str = r#"{"received":true,"duplicate":false}"#;
const AGAIN: &str = r#"{"received":true,"duplicate":true}"#;
const EVENTS: &str = "SELECT count(*) FROM billing_events WHERE provider = 'whop'";
const AUDIT: &str = "SELECT count(*) FROM audit_log WHERE action = 'billing.event'";

/// `keel.toml`: the fixtures' product and plan, and the sample product of `keel dev webhook`.
const WHOP_PRODUCTS: &str = r#"
[products]
prod_Pr0Ab1Cd2Ef3 = ["pro"]
plan_Mo1Nt2Hl3Y4 = ["pro", "vip"]
prod_pro = ["pro"]
"#;

/// An app with Whop enabled under the current and the old secret (and the other providers).
pub fn whop_app(db: TestDb) -> (tempfile::TempDir, TestAppBuilder) {
    let (dir, _) = config_dir();
    let path = dir.path().join("keel.toml");
    std::fs::write(&path, WHOP_PRODUCTS).unwrap();
    let builder = app(db, &path).env(
        "WHOP_WEBHOOK_SECRET",
        &format!("{WHOP_SECRET},{OLD_WHOP_SECRET}"),
    );
    (dir, builder)
}

pub fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

fn iso(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn fresh(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The v1 fixture `name` with a fresh id, happening `ago` seconds ago, a membership's period
/// ending in 30 days.
pub fn v1(name: &str, ago: i64) -> Value {
    let event = set(fixture("whop", name), "/id", json!(fresh("msg_t")));
    let mut event = set(event, "/timestamp", json!(iso(now_s() - ago)));
    if let Some(end) = event.pointer_mut("/data/renewal_period_end") {
        *end = json!(iso(now_s() + 30 * DAY_S));
    }
    event
}

/// The legacy fixture `name`, last changed `ago` seconds ago, its period ending in 30 days.
pub fn v5(name: &str, ago: i64) -> Value {
    let event = set(
        fixture("whop", name),
        "/data/updated_at",
        json!(now_s() - ago),
    );
    set(
        event,
        "/data/renewal_period_end",
        json!(now_s() + 30 * DAY_S),
    )
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

/// Posts `body` with `headers`.
pub async fn post(app: &TestApp, headers: &[(&str, String)], body: &[u8]) -> Reply {
    let mut request = reqwest::Client::new()
        .post(app.url("/webhooks/whop"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply { status, body }
}

/// The Standard Webhooks headers of `body` as message `id` at `ts` under `secret`.
pub fn standard_headers(
    secret: &str,
    id: &str,
    ts: i64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let key = WebhookSecret::parse(secret).unwrap();
    vec![
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", key.sign(id, ts, body)),
    ]
}

/// The legacy header of `body` at `ts` under `secret`.
pub fn legacy_headers(secret: &str, ts: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    let key = WebhookSecret::parse(secret).unwrap();
    let value = format!("t={ts},v1={}", sign_legacy(&key, ts, body));
    vec![("x-whop-signature", value)]
}

/// Delivers a v1 event signed now with the current secret.
pub async fn deliver(app: &TestApp, event: &Value) -> Reply {
    let body = event.to_string();
    let id = event["id"].as_str().unwrap();
    let headers = standard_headers(WHOP_SECRET, id, now_s(), body.as_bytes());
    post(app, &headers, body.as_bytes()).await
}

/// Delivers a legacy event signed now with the current secret.
pub async fn deliver_legacy(app: &TestApp, event: &Value) -> Reply {
    let body = event.to_string();
    let headers = legacy_headers(WHOP_SECRET, now_s(), body.as_bytes());
    post(app, &headers, body.as_bytes()).await
}

pub fn fresh_reply() -> Value {
    serde_json::from_str(FRESH).unwrap()
}

pub fn again_reply() -> Value {
    serde_json::from_str(AGAIN).unwrap()
}

/// How many Whop subscriptions of `user` are held in `company`.
pub async fn held_in(app: &TestApp, user: &str, company: &str) -> i64 {
    let q = format!(
        "SELECT count(*) FROM subscriptions WHERE provider = 'whop' AND user_id = '{user}' \
         AND tenant_id = '{company}'"
    );
    app.db.scalar(&q).await
}

pub async fn stored_events(app: &TestApp) -> i64 {
    app.db.scalar(EVENTS).await
}

pub async fn audit_rows(app: &TestApp) -> i64 {
    app.db.scalar(AUDIT).await
}

keel_testkit::engine_test!(a_membership_grants_its_products_entitlements_in_its_company);
async fn a_membership_grants_its_products_entitlements_in_its_company(db: TestDb) {
    let (_dir, builder) = whop_app(db);
    let app = builder.spawn().await;
    let paid = v1("payment_succeeded", 20);
    assert_eq!(deliver(&app, &paid).await.body, fresh_reply());
    assert!(
        !active(&app, USER, "pro").await,
        "a payment alone grants nothing"
    );
    let activated = v1("membership_activated", 10);
    let reply = deliver(&app, &activated).await;
    assert_eq!(reply.body, fresh_reply());
    let e = entitlements(&app, USER).await;
    assert_eq!(e["pro"]["active"], json!(true), "{e}");
    assert_eq!(
        e["vip"]["active"],
        json!(true),
        "the plan's entitlements add: {e}"
    );
    assert_eq!(e["pro"]["source"], json!("whop"), "{e}");
    assert_eq!(e["pro"]["product_id"], json!("prod_Pr0Ab1Cd2Ef3"), "{e}");
    assert_eq!(e["pro"]["will_renew"], json!(true), "{e}");
    assert_eq!(held_in(&app, USER, COMPANY).await, 1);
    let canceling = v1("membership_cancel_at_period_end_changed", 5);
    assert_eq!(deliver(&app, &canceling).await.body, fresh_reply());
    let e = entitlements(&app, USER).await;
    assert_eq!(e["pro"]["active"], json!(true), "{e}");
    assert_eq!(e["pro"]["will_renew"], json!(false), "{e}");
    let deactivated = v1("membership_deactivated", 1);
    assert_eq!(deliver(&app, &deactivated).await.body, fresh_reply());
    assert!(!active(&app, USER, "pro").await);
    assert_eq!((stored_events(&app).await, audit_rows(&app).await), (4, 4));
    app.shutdown().await.unwrap();
}

keel_testkit::engine_test!(a_deactivation_older_than_the_activation_changes_nothing);
async fn a_deactivation_older_than_the_activation_changes_nothing(db: TestDb) {
    let (_dir, builder) = whop_app(db);
    let app = builder.spawn().await;
    // Standard Webhooks: the activation at -10 s arrives first, the deactivation of -60 s after.
    deliver(&app, &v1("membership_activated", 10)).await;
    let late = deliver(&app, &v1("membership_deactivated", 60)).await;
    assert_eq!(late.body, fresh_reply());
    assert!(active(&app, USER, "pro").await, "an older deactivation won");
    deliver(&app, &v1("membership_deactivated", 5)).await;
    assert!(
        !active(&app, USER, "pro").await,
        "the newer deactivation lost"
    );
    // Legacy: the same for another membership of the same member.
    let other = |event: Value| set(event, "/data/id", json!("mem_legacy"));
    let legacy_user = |event: Value| set(event, "/data/user_id", json!("user_legacy"));
    deliver_legacy(
        &app,
        &legacy_user(other(v5("v5_membership_went_valid", 10))),
    )
    .await;
    let late = deliver_legacy(
        &app,
        &legacy_user(other(v5("v5_membership_went_invalid", 60))),
    )
    .await;
    assert_eq!(late.body, fresh_reply());
    assert!(active(&app, "user_legacy", "pro").await);
    assert_eq!(held_in(&app, "user_legacy", COMPANY).await, 1);
    deliver_legacy(
        &app,
        &legacy_user(other(v5("v5_membership_went_invalid", 5))),
    )
    .await;
    assert!(!active(&app, "user_legacy", "pro").await);
    app.shutdown().await.unwrap();
}

keel_testkit::engine_test!(duplicates_are_stored_once_and_payloads_sealed_and_replayable);
async fn duplicates_are_stored_once_and_payloads_sealed_and_replayable(db: TestDb) {
    let (_dir, builder) = whop_app(db);
    let app = builder.spawn().await;
    let event = v1("membership_activated", 10);
    let id = event["id"].as_str().unwrap().to_string();
    assert_eq!(deliver(&app, &event).await.body, fresh_reply());
    // A retry is signed again at a later time; the same message id is a duplicate.
    assert_eq!(deliver(&app, &event).await.body, again_reply());
    let legacy = v5("v5_membership_went_valid", 30);
    assert_eq!(deliver_legacy(&app, &legacy).await.body, fresh_reply());
    assert_eq!(deliver_legacy(&app, &legacy).await.body, again_reply());
    assert_eq!((stored_events(&app).await, audit_rows(&app).await), (2, 2));
    let billing = &app.services().billing;
    let row = app
        .services()
        .db
        .billing_event(keel::billing::Provider::Whop, &id)
        .await;
    let (summary, payload) = row.unwrap().expect("stored");
    let payload = payload.expect("payload kept");
    for clear in ["ada@example.com", "Ada Lovelace", "membership.activated"] {
        let found = payload.windows(clear.len()).any(|w| w == clear.as_bytes());
        assert!(!found, "the payload holds {clear} in clear");
    }
    assert_eq!(summary.user_id.as_deref(), Some(USER));
    assert_eq!(summary.product_id.as_deref(), Some("prod_Pr0Ab1Cd2Ef3"));
    let aad = format!("billing_events:whop:{id}");
    let opened = billing.sealer().open(&payload, aad.as_bytes()).unwrap();
    assert_eq!(opened, event.to_string().into_bytes());
    let replayed = billing
        .replay(keel::billing::Provider::Whop, &id, "test")
        .await
        .unwrap();
    assert_eq!(replayed.outcome, "applied");
    assert!(active(&app, USER, "pro").await);
    app.shutdown().await.unwrap();
}

keel_testkit::engine_test!(keel_dev_webhook_sends_whop_samples_that_grant);
async fn keel_dev_webhook_sends_whop_samples_that_grant(db: TestDb) {
    let (_dir, builder) = whop_app(db);
    let settings = builder.settings();
    let app = builder.spawn().await;
    let base = app.url("");
    let sent = keel::ops::dev_webhook::send(
        &settings,
        "whop",
        "membership.activated",
        "user_sample",
        None,
        Some(&base),
    )
    .await
    .unwrap();
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(active(&app, "user_sample", "pro").await);
    for kind in [
        "payment.succeeded",
        "payment.failed",
        "membership.deactivated",
    ] {
        let sent =
            keel::ops::dev_webhook::send(&settings, "whop", kind, "user_sample", None, Some(&base))
                .await
                .unwrap();
        assert_eq!(sent.status, 200, "{kind}: {}", sent.body);
    }
    assert!(!active(&app, "user_sample", "pro").await);
    app.shutdown().await.unwrap();
}
