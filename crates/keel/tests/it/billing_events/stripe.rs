//! Stripe's events: checkout and subscription links, statuses, invoices and period ends.

use super::*;

keel_testkit::engine_test!(checkout_before_the_subscription_links_the_customer);
async fn checkout_before_the_subscription_links_the_customer(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let end = now_s() + 30 * DAY_S;
    checkout(&app, 20).await;
    deliver_st(&app, &sub("created", "active", 10, end)).await;
    let e = one(&app, "user_42", "premium").await;
    assert_eq!(e["active"], json!(true), "{e}");
    assert_eq!(e["source"], json!("stripe"), "{e}");
    assert_eq!(e["product_id"], json!("prod_premium"), "{e}");
    assert_eq!(e["will_renew"], json!(true), "{e}");
    assert_eq!(e["in_grace_period"], json!(false), "{e}");
    assert_eq!(ends_ms(&e), Some(end * 1000), "{e}");
}

keel_testkit::engine_test!(subscription_before_checkout_is_credited_once_the_customer_is_linked);
async fn subscription_before_checkout_is_credited_once_the_customer_is_linked(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let end = now_s() + 30 * DAY_S;
    deliver_st(&app, &sub("created", "active", 20, end)).await;
    assert!(!active(&app, "user_42", "premium").await);
    checkout(&app, 10).await;
    let e = one(&app, "user_42", "premium").await;
    assert_eq!(e["active"], json!(true), "{e}");
    assert_eq!(e["source"], json!("stripe"), "{e}");
    assert_eq!(ends_ms(&e), Some(end * 1000), "{e}");
}

keel_testkit::engine_test!(trialing_subscription_grants_access);
async fn trialing_subscription_grants_access(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    checkout(&app, 20).await;
    deliver_st(&app, &sub("created", "trialing", 10, now_s() + 7 * DAY_S)).await;
    let e = one(&app, "user_42", "premium").await;
    assert_eq!(e["active"], json!(true), "{e}");
    assert_eq!(e["will_renew"], json!(true), "{e}");
}

keel_testkit::engine_test!(past_due_keeps_access_for_the_grace_days_after_the_period_end);
async fn past_due_keeps_access_for_the_grace_days_after_the_period_end(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let recent = now_s() - DAY_S;
    deliver_st(
        &app,
        &owned_by(sub("updated", "past_due", 10, recent), "recent"),
    )
    .await;
    let e = one(&app, "user_recent", "premium").await;
    assert_eq!(e["active"], json!(true), "{e}");
    assert_eq!(e["in_grace_period"], json!(true), "{e}");
    assert_eq!(ends_ms(&e), Some((recent + 3 * DAY_S) * 1000), "{e}");
    let old = sub("updated", "past_due", 10, now_s() - 5 * DAY_S);
    deliver_st(&app, &owned_by(old, "old")).await;
    let e = one(&app, "user_old", "premium").await;
    assert_eq!(e["active"], json!(false), "{e}");
    assert_eq!(e["in_grace_period"], json!(false), "{e}");
}

keel_testkit::engine_test!(ended_or_unpaid_statuses_revoke_access);
async fn ended_or_unpaid_statuses_revoke_access(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let end = now_s() + 20 * DAY_S;
    for status in [
        "canceled",
        "unpaid",
        "incomplete",
        "incomplete_expired",
        "paused",
    ] {
        deliver_st(&app, &owned_by(sub("created", "active", 20, end), status)).await;
        let user = format!("user_{status}");
        assert!(active(&app, &user, "premium").await, "{status}");
        deliver_st(&app, &owned_by(sub("updated", status, 10, end), status)).await;
        let e = one(&app, &user, "premium").await;
        assert_eq!(e["active"], json!(false), "{status}: {e}");
        assert_eq!(e["will_renew"], json!(false), "{status}: {e}");
    }
}

keel_testkit::engine_test!(deleted_subscription_stays_revoked_when_an_older_update_arrives_late);
async fn deleted_subscription_stays_revoked_when_an_older_update_arrives_late(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let end = now_s() + 20 * DAY_S;
    checkout(&app, 60).await;
    deliver_st(&app, &sub("created", "active", 50, end)).await;
    deliver_st(&app, &sub("deleted", "canceled", 10, end)).await;
    assert!(!active(&app, "user_42", "premium").await);
    deliver_st(&app, &sub("updated", "active", 30, end)).await;
    let e = one(&app, "user_42", "premium").await;
    assert_eq!(e["active"], json!(false), "{e}");
}

keel_testkit::engine_test!(paid_invoice_extends_access_to_the_invoice_period_end);
async fn paid_invoice_extends_access_to_the_invoice_period_end(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    checkout(&app, 30).await;
    deliver_st(&app, &sub("created", "active", 20, now_s() - HOUR_S)).await;
    assert!(!active(&app, "user_42", "premium").await);
    let paid = now_s() + 20 * DAY_S;
    deliver_st(&app, &invoice_paid(10, paid)).await;
    let e = one(&app, "user_42", "premium").await;
    assert_eq!(e["active"], json!(true), "{e}");
    assert_eq!(ends_ms(&e), Some(paid * 1000), "{e}");
}

keel_testkit::engine_test!(older_api_versions_read_the_period_end_from_the_subscription);
async fn older_api_versions_read_the_period_end_from_the_subscription(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let end = now_s() + 10 * DAY_S;
    let event = st("customer_subscription_created", 10);
    let mut event = set(event, "/api_version", json!("2024-06-20"));
    let item = event
        .pointer_mut("/data/object/items/data/0")
        .and_then(Value::as_object_mut);
    let item = item.expect("the fixture has an item");
    item.remove("current_period_end");
    item.remove("current_period_start");
    event["data"]["object"]["current_period_end"] = json!(end);
    event["data"]["object"]["current_period_start"] = json!(end - 30 * DAY_S);
    deliver_st(&app, &owned_by(event, "legacy")).await;
    let e = one(&app, "user_legacy", "premium").await;
    assert_eq!(e["active"], json!(true), "{e}");
    assert_eq!(ends_ms(&e), Some(end * 1000), "{e}");
}

keel_testkit::engine_test!(cancel_at_period_end_keeps_access_without_renewal);
async fn cancel_at_period_end_keeps_access_without_renewal(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let end = now_s() + 10 * DAY_S;
    checkout(&app, 20).await;
    let event = sub("updated", "active", 10, end);
    let event = set(event, "/data/object/cancel_at_period_end", json!(true));
    deliver_st(&app, &event).await;
    let e = one(&app, "user_42", "premium").await;
    assert_eq!(e["active"], json!(true), "{e}");
    assert_eq!(e["will_renew"], json!(false), "{e}");
    assert_eq!(ends_ms(&e), Some(end * 1000), "{e}");
}

keel_testkit::engine_test!(subscription_metadata_user_id_links_the_customer);
async fn subscription_metadata_user_id_links_the_customer(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let event = sub("created", "active", 10, now_s() + 10 * DAY_S);
    deliver_st(&app, &owned_by(event, "meta")).await;
    let e = one(&app, "user_meta", "premium").await;
    assert_eq!(e["active"], json!(true), "{e}");
    assert_eq!(e["source"], json!("stripe"), "{e}");
}

keel_testkit::engine_test!(unknown_stripe_event_types_change_nothing);
async fn unknown_stripe_event_types_change_nothing(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let end = now_s() + 10 * DAY_S;
    checkout(&app, 30).await;
    deliver_st(&app, &sub("created", "active", 20, end)).await;
    let unknown = sub("deleted", "canceled", 10, end);
    let unknown = set(
        unknown,
        "/type",
        json!("customer.subscription.something_new"),
    );
    deliver_st(&app, &unknown).await;
    let e = one(&app, "user_42", "premium").await;
    assert_eq!(e["active"], json!(true), "{e}");
    assert_eq!(e["will_renew"], json!(true), "{e}");
    // Unlinked, they credit nobody.
    let unknown = set(
        sub("created", "active", 5, end),
        "/type",
        json!("something.new"),
    );
    deliver_st(&app, &owned_by(unknown, "new")).await;
    assert_eq!(entitlements(&app, "user_new").await, json!({}));
}
