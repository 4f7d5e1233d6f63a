//! Each billing event type end to end: RevenueCat and Stripe webhooks built from the documented
//! fixtures (timestamps moved to now), then what `GET /v1/me/entitlements` answers.

use crate::billing_support;

use std::sync::atomic::{AtomicU64, Ordering};

use billing_support::*;
use keel_testkit::TestApp;
use keel_testkit::TestDb;
use serde_json::{json, Value};

mod engines;
mod stripe;

/// The `app_user_id` of the RevenueCat fixtures.
const USER: &str = "1234567890";
const MINUTE_MS: i64 = 60_000;
const HOUR_S: i64 = 3_600;
const DAY_S: i64 = 86_400;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

/// An event id not used before in this process.
fn fresh(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The RevenueCat fixture `name` with a fresh id, `ago` minutes old, expiring at `expires` (ms).
fn rc(name: &str, ago: i64, expires: Option<i64>) -> Value {
    let event = set(
        fixture("revenuecat", name),
        "/event/id",
        json!(fresh("rc-")),
    );
    let event = set(
        event,
        "/event/event_timestamp_ms",
        json!(now_ms() - ago * MINUTE_MS),
    );
    set(event, "/event/expiration_at_ms", json!(expires))
}

/// `event` about `user`'s own subscription (its own original transaction).
fn rc_for(event: Value, user: &str) -> Value {
    let event = set(event, "/event/app_user_id", json!(user));
    set(
        event,
        "/event/original_transaction_id",
        json!(format!("otx-{user}")),
    )
}

/// The Stripe fixture `name` with a fresh id, created `ago` seconds ago.
fn st(name: &str, ago: i64) -> Value {
    let event = set(fixture("stripe", name), "/id", json!(fresh("evt_")));
    set(event, "/created", json!(now_s() - ago))
}

/// A `customer.subscription.{kind}` event in `status`, its item period ending at `end` (s).
fn sub(kind: &str, status: &str, ago: i64, end: i64) -> Value {
    let event = st(&format!("customer_subscription_{kind}"), ago);
    let event = set(event, "/data/object/status", json!(status));
    set(
        event,
        "/data/object/items/data/0/current_period_end",
        json!(end),
    )
}

/// An `invoice.paid` for `sub_Q1` whose line period ends at `end` (s).
fn invoice_paid(ago: i64, end: i64) -> Value {
    set(
        st("invoice_paid", ago),
        "/data/object/lines/data/0/period/end",
        json!(end),
    )
}

/// `event` for customer `cus_{n}` and subscription `sub_{n}`, whose metadata names `user_{n}`.
fn owned_by(mut event: Value, n: &str) -> Value {
    let object = &mut event["data"]["object"];
    object["id"] = json!(format!("sub_{n}"));
    object["customer"] = json!(format!("cus_{n}"));
    object["metadata"]["user_id"] = json!(format!("user_{n}"));
    event
}

fn assert_received(a: &Answer, event: &Value) {
    assert_eq!(a.status, 200, "{} for {event}", a.body);
    assert_eq!(
        a.body,
        json!({"received": true, "duplicate": false}),
        "{event}"
    );
}

async fn deliver_rc(app: &TestApp, event: &Value) {
    assert_received(&revenuecat(app, event).await, event);
}

async fn deliver_st(app: &TestApp, event: &Value) {
    assert_received(&stripe(app, event).await, event);
}

/// A stored event answers `duplicate: true` when delivered again.
async fn assert_stored_rc(app: &TestApp, event: &Value) {
    let again = revenuecat(app, event).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body, json!({"received": true, "duplicate": true}));
}

/// The `name` entitlement of `user` (null when absent).
async fn one(app: &TestApp, user: &str, name: &str) -> Value {
    entitlements(app, user).await[name].clone()
}

/// `expires_at` in milliseconds since the epoch.
fn ends_ms(e: &Value) -> Option<i64> {
    e["expires_at"].as_str().map(|s| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap_or_else(|err| panic!("expires_at {s}: {err}"))
            .timestamp_millis()
    })
}

/// Asserts `e` is an active, renewing RevenueCat grant of the weekly product ending at `until`.
fn assert_renewing_rc(e: &Value, until: i64) {
    assert_eq!(e["active"], json!(true), "{e}");
    assert_eq!(e["will_renew"], json!(true), "{e}");
    assert_eq!(e["in_grace_period"], json!(false), "{e}");
    assert_eq!(e["source"], json!("revenuecat"), "{e}");
    assert_eq!(e["product_id"], json!("com.subscription.weekly"), "{e}");
    assert_eq!(ends_ms(e), Some(until), "{e}");
}

/// Links `cus_Q1` to `user_42`: checkout.session.completed.
async fn checkout(app: &TestApp, ago: i64) {
    deliver_st(app, &st("checkout_session_completed", ago)).await;
}

keel_testkit::engine_test!(renewing_revenuecat_events_grant_until_expiration);
async fn renewing_revenuecat_events_grant_until_expiration(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let until = ms_in_days(7);
    for name in [
        "initial_purchase",
        "renewal",
        "uncancellation",
        "subscription_extended",
    ] {
        let user = format!("user-{name}");
        deliver_rc(&app, &rc_for(rc(name, 5, Some(until)), &user)).await;
        let e = one(&app, &user, "pro").await;
        assert_renewing_rc(&e, until);
    }
}

keel_testkit::engine_test!(unsubscribe_cancellation_keeps_access_until_expiry_without_renewal);
async fn unsubscribe_cancellation_keeps_access_until_expiry_without_renewal(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let until = ms_in_days(7);
    deliver_rc(&app, &rc("initial_purchase", 20, Some(until))).await;
    deliver_rc(&app, &rc("cancellation", 10, Some(until))).await;
    let e = one(&app, USER, "pro").await;
    assert_eq!(e["active"], json!(true), "{e}");
    assert_eq!(e["will_renew"], json!(false), "{e}");
    assert_eq!(ends_ms(&e), Some(until), "{e}");
}

keel_testkit::engine_test!(refund_cancellation_ends_access_at_once);
async fn refund_cancellation_ends_access_at_once(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let until = ms_in_days(7);
    deliver_rc(&app, &rc("initial_purchase", 20, Some(until))).await;
    assert!(active(&app, USER, "pro").await);
    deliver_rc(&app, &rc("cancellation_refund", 10, Some(until))).await;
    let e = one(&app, USER, "pro").await;
    assert_eq!(e["active"], json!(false), "{e}");
    assert_eq!(e["will_renew"], json!(false), "{e}");
}

keel_testkit::engine_test!(non_renewing_purchase_without_expiration_is_lifetime);
async fn non_renewing_purchase_without_expiration_is_lifetime(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    deliver_rc(&app, &rc("non_renewing_purchase", 5, None)).await;
    let e = one(&app, USER, "pro").await;
    assert_eq!(e["active"], json!(true), "{e}");
    assert_eq!(e["expires_at"], Value::Null, "{e}");
    assert_eq!(e["will_renew"], json!(false), "{e}");
    assert_eq!(e["source"], json!("revenuecat"), "{e}");
}

keel_testkit::engine_test!(paused_subscription_keeps_access_without_renewal);
async fn paused_subscription_keeps_access_without_renewal(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let until = ms_in_days(7);
    deliver_rc(&app, &rc("initial_purchase", 20, Some(until))).await;
    deliver_rc(&app, &rc("subscription_paused", 10, Some(until))).await;
    let e = one(&app, USER, "pro").await;
    assert_eq!(e["active"], json!(true), "{e}");
    assert_eq!(e["will_renew"], json!(false), "{e}");
    assert_eq!(ends_ms(&e), Some(until), "{e}");
}

keel_testkit::engine_test!(expiration_ends_access_even_before_the_stated_expiry);
async fn expiration_ends_access_even_before_the_stated_expiry(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let until = ms_in_days(7);
    deliver_rc(&app, &rc("initial_purchase", 20, Some(until))).await;
    deliver_rc(&app, &rc("expiration", 10, Some(until))).await;
    let e = one(&app, USER, "pro").await;
    assert_eq!(e["active"], json!(false), "{e}");
    assert_eq!(e["will_renew"], json!(false), "{e}");
}

keel_testkit::engine_test!(billing_issue_keeps_access_while_the_grace_period_runs);
async fn billing_issue_keeps_access_while_the_grace_period_runs(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let lapsed = now_ms() - 60 * MINUTE_MS;
    let grace = ms_in_days(6);
    let issue = rc("billing_issue", 10, Some(lapsed));
    let issue = set(issue, "/event/grace_period_expiration_at_ms", json!(grace));
    deliver_rc(&app, &rc("initial_purchase", 20, Some(lapsed))).await;
    deliver_rc(&app, &issue).await;
    let e = one(&app, USER, "pro").await;
    assert_eq!(e["active"], json!(true), "{e}");
    assert_eq!(e["in_grace_period"], json!(true), "{e}");
    assert_eq!(ends_ms(&e), Some(grace), "{e}");

    // Once the grace period is over, access is gone.
    let over = rc_for(rc("billing_issue", 10, Some(lapsed)), "user-over");
    let over = set(
        over,
        "/event/grace_period_expiration_at_ms",
        json!(now_ms() - MINUTE_MS),
    );
    deliver_rc(&app, &over).await;
    let e = one(&app, "user-over", "pro").await;
    assert_eq!(e["active"], json!(false), "{e}");
    assert_eq!(e["in_grace_period"], json!(false), "{e}");
}

keel_testkit::engine_test!(product_change_test_and_unknown_events_change_nothing);
async fn product_change_test_and_unknown_events_change_nothing(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let until = ms_in_days(7);
    deliver_rc(&app, &rc("initial_purchase", 40, Some(until))).await;
    let month = Some(ms_in_days(30));
    let unknown = set(rc("test", 10, month), "/event/type", json!("SOMETHING_NEW"));
    let later = [
        rc("product_change", 30, month),
        rc("test", 20, month),
        unknown,
    ];
    for event in &later {
        deliver_rc(&app, event).await;
        assert_stored_rc(&app, event).await;
    }
    assert_renewing_rc(&one(&app, USER, "pro").await, until);
    // For a user without a purchase they grant nothing either.
    for event in &later {
        let event = set(event.clone(), "/event/id", json!(fresh("rc-")));
        deliver_rc(&app, &rc_for(event, "nobody")).await;
    }
    assert_eq!(entitlements(&app, "nobody").await, json!({}));
}

keel_testkit::engine_test!(temporary_entitlement_grant_gives_access_for_at_most_a_day);
async fn temporary_entitlement_grant_gives_access_for_at_most_a_day(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let until = now_ms() + 24 * 60 * MINUTE_MS;
    deliver_rc(&app, &rc("temporary_entitlement_grant", 1, Some(until))).await;
    let e = one(&app, USER, "pro").await;
    assert_eq!(e["active"], json!(true), "{e}");
    assert_eq!(ends_ms(&e), Some(until), "{e}");
}

keel_testkit::engine_test!(transfer_moves_subscriptions_to_the_receiving_user);
async fn transfer_moves_subscriptions_to_the_receiving_user(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let transfer = fixture("revenuecat", "transfer");
    let from = transfer["event"]["transferred_from"][0]
        .as_str()
        .unwrap()
        .to_string();
    let to = transfer["event"]["transferred_to"][0]
        .as_str()
        .unwrap()
        .to_string();
    let until = ms_in_days(7);
    deliver_rc(
        &app,
        &rc_for(rc("initial_purchase", 20, Some(until)), &from),
    )
    .await;
    assert!(active(&app, &from, "pro").await);
    assert!(!active(&app, &to, "pro").await);
    let transfer = set(
        transfer,
        "/event/event_timestamp_ms",
        json!(now_ms() - 10 * MINUTE_MS),
    );
    deliver_rc(&app, &transfer).await;
    assert_renewing_rc(&one(&app, &to, "pro").await, until);
    assert!(
        !active(&app, &from, "pro").await,
        "{}",
        entitlements(&app, &from).await
    );
}

keel_testkit::engine_test!(cancellation_then_expiration_revokes_and_a_later_renewal_regrants);
async fn cancellation_then_expiration_revokes_and_a_later_renewal_regrants(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let until = ms_in_days(7);
    deliver_rc(&app, &rc("initial_purchase", 40, Some(until))).await;
    deliver_rc(&app, &rc("cancellation", 30, Some(until))).await;
    assert!(active(&app, USER, "pro").await);
    deliver_rc(&app, &rc("expiration", 20, Some(now_ms() - MINUTE_MS))).await;
    assert!(!active(&app, USER, "pro").await);
    let renewed = ms_in_days(30);
    deliver_rc(&app, &rc("renewal", 10, Some(renewed))).await;
    assert_renewing_rc(&one(&app, USER, "pro").await, renewed);
}

keel_testkit::engine_test!(an_older_event_delivered_late_does_not_undo_a_newer_one);
async fn an_older_event_delivered_late_does_not_undo_a_newer_one(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let until = ms_in_days(7);
    deliver_rc(&app, &rc("expiration", 10, Some(until))).await;
    deliver_rc(&app, &rc("initial_purchase", 20, Some(until))).await;
    let e = one(&app, USER, "pro").await;
    assert_eq!(e["active"], json!(false), "{e}");
}

keel_testkit::engine_test!(anonymous_purchase_is_credited_to_the_real_user_among_its_aliases);
async fn anonymous_purchase_is_credited_to_the_real_user_among_its_aliases(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let until = ms_in_days(7);
    let event = rc("initial_purchase", 5, Some(until));
    let event = set(event, "/event/app_user_id", json!("$RCAnonymousID:x"));
    let event = set(event, "/event/original_app_user_id", json!("real-user-7"));
    let event = set(
        event,
        "/event/aliases",
        json!(["$RCAnonymousID:x", "real-user-7"]),
    );
    deliver_rc(&app, &event).await;
    assert_renewing_rc(&one(&app, "real-user-7", "pro").await, until);
}

keel_testkit::engine_test!(entitlement_ids_win_over_the_product_mapping);
async fn entitlement_ids_win_over_the_product_mapping(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let until = ms_in_days(7);
    let gold = rc_for(rc("initial_purchase", 5, Some(until)), "gold-user");
    let gold = set(gold, "/event/entitlement_ids", json!(["gold"]));
    deliver_rc(&app, &gold).await;
    let e = entitlements(&app, "gold-user").await;
    assert_eq!(e["gold"]["active"], json!(true), "{e}");
    assert_eq!(e["pro"], Value::Null, "{e}");
    let mapped = rc_for(rc("initial_purchase", 5, Some(until)), "mapped-user");
    let mapped = set(mapped, "/event/entitlement_ids", Value::Null);
    let mapped = set(
        mapped,
        "/event/product_id",
        json!("com.subscription.monthly"),
    );
    deliver_rc(&app, &mapped).await;
    let e = one(&app, "mapped-user", "pro").await;
    assert_eq!(e["active"], json!(true), "{e}");
    assert_eq!(e["product_id"], json!("com.subscription.monthly"), "{e}");
}

keel_testkit::engine_test!(sandbox_purchases_grant_outside_production_by_default);
async fn sandbox_purchases_grant_outside_production_by_default(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let event = rc("initial_purchase", 5, Some(ms_in_days(7)));
    let event = set(event, "/event/environment", json!("SANDBOX"));
    deliver_rc(&app, &event).await;
    assert!(active(&app, USER, "pro").await);
}

keel_testkit::engine_test!(refused_sandbox_events_are_stored_but_grant_nothing);
async fn refused_sandbox_events_are_stored_but_grant_nothing(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config)
        .env("BILLING_ACCEPT_SANDBOX", "false")
        .spawn()
        .await;
    let until = ms_in_days(7);
    let sandbox = rc("initial_purchase", 5, Some(until));
    let sandbox = set(sandbox, "/event/environment", json!("SANDBOX"));
    deliver_rc(&app, &sandbox).await;
    assert_stored_rc(&app, &sandbox).await;
    assert!(
        !active(&app, USER, "pro").await,
        "{}",
        entitlements(&app, USER).await
    );
    deliver_rc(
        &app,
        &rc_for(rc("initial_purchase", 5, Some(until)), "live-user"),
    )
    .await;
    assert_renewing_rc(&one(&app, "live-user", "pro").await, until);
}

keel_testkit::engine_test!(
    billing_error_cancellation_sent_with_the_billing_issue_keeps_grace_access
);
async fn billing_error_cancellation_sent_with_the_billing_issue_keeps_grace_access(db: TestDb) {
    // RevenueCat's billing issue flow (reference §1.5): BILLING_ISSUE and
    // CANCELLATION(BILLING_ERROR) fire together, in that order; access lasts until grace ends.
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let lapsed = now_ms() - 60 * MINUTE_MS;
    let grace = ms_in_days(6);
    deliver_rc(&app, &rc("initial_purchase", 20, Some(lapsed))).await;
    let issue = rc("billing_issue", 10, Some(lapsed));
    let issue = set(issue, "/event/grace_period_expiration_at_ms", json!(grace));
    let at = issue["event"]["event_timestamp_ms"].as_i64().unwrap();
    let cancel = rc("cancellation", 10, Some(lapsed));
    let cancel = set(cancel, "/event/cancel_reason", json!("BILLING_ERROR"));
    let cancel = set(cancel, "/event/event_timestamp_ms", json!(at + 1));
    deliver_rc(&app, &issue).await;
    deliver_rc(&app, &cancel).await;
    let e = one(&app, USER, "pro").await;
    assert_eq!(e["active"], json!(true), "{e}");
    assert_eq!(e["in_grace_period"], json!(true), "{e}");
    assert_eq!(ends_ms(&e), Some(grace), "{e}");
}

keel_testkit::engine_test!(later_event_naming_only_a_linked_anonymous_id_stays_with_the_real_user);
async fn later_event_naming_only_a_linked_anonymous_id_stays_with_the_real_user(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let anon = |e: Value| {
        let e = set(e, "/event/original_app_user_id", json!("$RCAnonymousID:x"));
        set(e, "/event/aliases", json!(["$RCAnonymousID:x"]))
    };
    // The purchase links `$RCAnonymousID:x` to real-user-7.
    let first = rc_for(
        rc("initial_purchase", 20, Some(ms_in_days(7))),
        "real-user-7",
    );
    let first = set(
        anon(first),
        "/event/aliases",
        json!(["$RCAnonymousID:x", "real-user-7"]),
    );
    deliver_rc(&app, &first).await;
    assert!(active(&app, "real-user-7", "pro").await);
    let renewed = ms_in_days(30);
    let renewal = rc_for(rc("renewal", 10, Some(renewed)), "real-user-7");
    let renewal = set(renewal, "/event/app_user_id", json!("$RCAnonymousID:x"));
    deliver_rc(&app, &anon(renewal)).await;
    assert_renewing_rc(&one(&app, "real-user-7", "pro").await, renewed);
}
