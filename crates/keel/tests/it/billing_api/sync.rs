//! RevenueCat reconciliation: the sync route and the sync job a webhook enqueues.

use super::*;

keel_testkit::engine_test!(sync_asks_revenuecat_and_records_the_answer);
async fn sync_asks_revenuecat_and_records_the_answer(db: TestDb) {
    let fake = FakeRevenueCat::start(RC_API_KEY).await;
    let (_dir, config) = config_dir();
    let app = app(db, &config)
        .env("REVENUECAT_API_KEY", RC_API_KEY)
        .env("REVENUECAT_API_URL", &fake.url())
        .spawn()
        .await;
    let expires = Utc::now() + chrono::Duration::days(30);
    for user in ["synced-1", "user 1/2"] {
        fake.set_entitlement(user, "pro", "com.subscription.monthly", Some(expires));
        let r = send(
            &app,
            Method::POST,
            "/v1/me/entitlements/sync",
            Some(&token(user)),
            None,
        )
        .await;
        let pro = &r.ok(200)["entitlements"]["pro"];
        assert_eq!(pro["active"], true, "{}", r.text);
        assert_eq!(pro["source"], "revenuecat", "{}", r.text);
        assert_eq!(pro["product_id"], "com.subscription.monthly", "{}", r.text);
        assert_eq!(pro["will_renew"], true, "{}", r.text);
        let shown: DateTime<Utc> = serde_json::from_value(pro["expires_at"].clone()).unwrap();
        assert!(
            (shown - expires).num_seconds().abs() <= 1,
            "{shown} vs {expires}"
        );
        assert_shape(&r.body["entitlements"]);
        assert_eq!(entitlements(&app, user).await, r.body["entitlements"]);
    }
    assert_eq!(fake.requests(), 2);
    assert_eq!(
        fake.last_path().as_deref(),
        Some("/v1/subscribers/user%201%2F2")
    );

    fake.fail_with(Some(503));
    let r = send(
        &app,
        Method::POST,
        "/v1/me/entitlements/sync",
        Some(&token("synced-1")),
        None,
    )
    .await;
    r.problem(502, "revenuecat-unavailable");
    assert!(
        !r.text.contains(RC_API_KEY) && !r.text.contains("Bearer"),
        "{}",
        r.text
    );
    assert!(
        active(&app, "synced-1", "pro").await,
        "a failed sync changes nothing"
    );
    fake.fail_with(None);

    let r = send(&app, Method::POST, "/v1/me/entitlements/sync", None, None).await;
    r.problem(401, "unauthorized");
    assert_eq!(fake.requests(), 3, "no token, no request to RevenueCat");

    // What RevenueCat says now (expired yesterday) replaces the webhook's state (7 days).
    let yesterday = Utc::now() - chrono::Duration::days(1);
    fake.set_entitlement(
        "synced-3",
        "pro",
        "com.subscription.weekly",
        Some(yesterday),
    );
    buy(&app, "synced-3").await;
    let r = send(
        &app,
        Method::POST,
        "/v1/me/entitlements/sync",
        Some(&token("synced-3")),
        None,
    )
    .await;
    assert_eq!(
        r.ok(200)["entitlements"]["pro"]["active"],
        false,
        "{}",
        r.text
    );
    assert!(!active(&app, "synced-3", "pro").await);
}

keel_testkit::engine_test!(sync_with_a_key_revenuecat_refuses_is_a_bad_gateway);
async fn sync_with_a_key_revenuecat_refuses_is_a_bad_gateway(db: TestDb) {
    let fake = FakeRevenueCat::start("sk_some-other-key-0123456789").await;
    let (_dir, config) = config_dir();
    let app = app(db, &config)
        .env("REVENUECAT_API_KEY", RC_API_KEY)
        .env("REVENUECAT_API_URL", &fake.url())
        .spawn()
        .await;
    let r = send(
        &app,
        Method::POST,
        "/v1/me/entitlements/sync",
        Some(&token("refused-1")),
        None,
    )
    .await;
    r.problem(502, "revenuecat-unavailable");
    assert!(
        !r.text.contains(RC_API_KEY) && !r.text.contains("Bearer"),
        "{}",
        r.text
    );
    assert_eq!(fake.requests(), 1);
}

keel_testkit::engine_test!(sync_without_an_api_key_is_not_configured);
async fn sync_without_an_api_key_is_not_configured(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let r = send(
        &app,
        Method::POST,
        "/v1/me/entitlements/sync",
        Some(&token("unsynced-1")),
        None,
    )
    .await;
    let detail = r.problem(404, "not-configured")["detail"].as_str().unwrap();
    assert!(detail.contains("REVENUECAT_API_KEY"), "{detail}");
    send(&app, Method::POST, "/v1/me/entitlements/sync", None, None)
        .await
        .problem(401, "unauthorized");
}

keel_testkit::engine_test!(a_revenuecat_webhook_enqueues_a_reconciling_sync);
async fn a_revenuecat_webhook_enqueues_a_reconciling_sync(db: TestDb) {
    let fake = FakeRevenueCat::start(RC_API_KEY).await;
    let user = "reconciled-1";
    let expires = Utc::now() + chrono::Duration::days(30);
    fake.set_entitlement(user, "pro", "com.subscription.weekly", Some(expires));
    let (_dir, config) = config_dir();
    let app = app(db, &config)
        .env("REVENUECAT_API_KEY", RC_API_KEY)
        .env("REVENUECAT_API_URL", &fake.url())
        .spawn()
        .await;
    buy(&app, user).await;
    let jobs = admin(
        &app,
        Method::GET,
        "/admin/api/jobs?kind=billing.revenuecat.sync",
        None,
    )
    .await;
    let jobs = jobs.ok(200).as_array().expect("jobs").clone();
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    assert_eq!(jobs[0]["kind"], "billing.revenuecat.sync");
    assert_eq!(
        jobs[0]["unique_key"],
        format!("billing.revenuecat.sync:{user}")
    );

    eventually(
        "the worker asks RevenueCat",
        Duration::from_secs(10),
        || async { fake.requests() >= 1 },
    )
    .await;
    assert_eq!(
        fake.last_path().as_deref(),
        Some(format!("/v1/subscribers/{user}").as_str())
    );
    // The subscriber's answer (30 days) replaces the webhook's state (7 days).
    eventually(
        "the subscriber's answer is shown",
        Duration::from_secs(10),
        || async {
            let e = entitlements(&app, user).await;
            let shown: Option<DateTime<Utc>> =
                serde_json::from_value(e["pro"]["expires_at"].clone()).ok();
            shown.is_some_and(|s| (s - expires).num_seconds().abs() <= 1)
        },
    )
    .await;
    eventually(
        "the sync job completes",
        Duration::from_secs(10),
        || async {
            let r = admin(
                &app,
                Method::GET,
                "/admin/api/jobs?kind=billing.revenuecat.sync",
                None,
            )
            .await;
            r.body[0]["state"] == "completed"
        },
    )
    .await;
}

keel_testkit::engine_test!(without_an_api_key_a_webhook_enqueues_no_sync);
async fn without_an_api_key_a_webhook_enqueues_no_sync(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    buy(&app, "unreconciled-1").await;
    assert!(active(&app, "unreconciled-1", "pro").await);
    let r = admin(
        &app,
        Method::GET,
        "/admin/api/jobs?kind=billing.revenuecat.sync",
        None,
    )
    .await;
    assert_eq!(r.ok(200), &json!([]));
}
