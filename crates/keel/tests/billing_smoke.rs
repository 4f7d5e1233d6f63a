//! The billing path end to end: a RevenueCat purchase and a Stripe subscription grant their
//! entitlements; duplicates answer `duplicate: true`.

mod billing_support;

use billing_support::*;
use serde_json::json;

keel_testkit::engine_tests! {
    async fn a_provider_not_listed_in_billing_providers_has_no_route(db) {
        let (_dir, config) = config_dir();
        // Both secrets are set, but only Stripe is listed.
        let app = app(db, &config).env("BILLING_PROVIDERS", "stripe").spawn().await;
        let event = fixture("revenuecat", "initial_purchase");
        let a = revenuecat(&app, &event).await;
        assert_eq!(a.status, 404, "{}", a.body);
        let now = chrono::Utc::now();
        let created = stripe_sample("customer.subscription.created", "u1", "prod_premium", now);
        assert_eq!(stripe(&app, &created).await.status, 200);
    }

    async fn purchases_from_both_providers_grant_entitlements(db) {
        let (_dir, config) = config_dir();
        let app = app(db, &config).spawn().await;
        let event = fixture("revenuecat", "initial_purchase");
        let event = set(event, "/event/expiration_at_ms", json!(ms_in_days(7)));
        let a = revenuecat(&app, &event).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body, json!({"received": true, "duplicate": false}));
        let again = revenuecat(&app, &event).await;
        assert_eq!(again.body, json!({"received": true, "duplicate": true}));
        let e = entitlements(&app, "1234567890").await;
        assert_eq!(e["pro"]["active"], json!(true), "{e}");
        assert_eq!(e["pro"]["source"], json!("revenuecat"));
        assert_eq!(e["pro"]["product_id"], json!("com.subscription.weekly"));

        let now = chrono::Utc::now();
        let checkout = stripe_sample("checkout.session.completed", "user_42", "prod_premium", now);
        let created = stripe_sample("customer.subscription.created", "user_42", "prod_premium", now);
        assert_eq!(stripe(&app, &created).await.status, 200);
        assert_eq!(stripe(&app, &checkout).await.status, 200);
        let e = entitlements(&app, "user_42").await;
        assert_eq!(e["premium"]["active"], json!(true), "{e}");
        assert_eq!(e["premium"]["source"], json!("stripe"));
    }
}
