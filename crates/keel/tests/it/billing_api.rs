//! The billing API over real HTTP: manual grants and revocations (audited), forward auth, the
//! paywall extractor, RevenueCat sync against a fake REST API, the reconcile job after a webhook,
//! the cross-process entitlement cache and the shape of every entitlement.

use crate::billing_support;

use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use billing_support::*;
use chrono::{DateTime, SecondsFormat, Utc};
use keel::http::{AppState, Entitled, EntitlementName};
use keel_testkit::{admin, eventually, FakeRevenueCat, Reply, TestApp, TestDb};
use reqwest::Method;
use serde_json::{json, Value};

mod paywall;

mod sync;

const PROBLEMS: &str = "https://keel.dev/problems/";

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> Reply {
    let mut request = app.client.request(method, app.url(path));
    if let Some(b) = bearer {
        request = request.bearer_auth(b);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    keel_testkit::send(request).await
}

async fn grant(app: &TestApp, user: &str, entitlement: &str, expires_at: Value) -> Reply {
    let body = json!({ "entitlement": entitlement, "expires_at": expires_at, "reason": "tester" });
    admin(
        app,
        Method::POST,
        &format!("/admin/api/users/{user}/grants"),
        Some(&body),
    )
    .await
}

/// The audit rows whose target is `user`, newest first.
async fn audit(app: &TestApp, user: &str) -> Vec<Value> {
    let r = admin(
        app,
        Method::GET,
        &format!("/admin/api/audit?target={user}"),
        None,
    )
    .await;
    r.ok(200).as_array().expect("audit rows").clone()
}

/// RFC 3339 with milliseconds, `by` from now.
fn at(by: chrono::Duration) -> String {
    (Utc::now() + by).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A RevenueCat INITIAL_PURCHASE of `com.subscription.weekly` (grants `pro`) for `user`.
fn purchase(user: &str, days: i64) -> Value {
    let event = fixture("revenuecat", "initial_purchase");
    let event = set(event, "/event/app_user_id", json!(user));
    let id = uuid::Uuid::now_v7().simple().to_string();
    let event = set(event, "/event/id", json!(id));
    let event = set(event, "/event/transaction_id", json!(id));
    let event = set(event, "/event/original_transaction_id", json!(id));
    set(event, "/event/expiration_at_ms", json!(ms_in_days(days)))
}

async fn buy(app: &TestApp, user: &str) {
    let a = revenuecat(app, &purchase(user, 7)).await;
    assert_eq!(a.status, 200, "{}", a.body);
}

/// Every entitlement object has exactly the documented keys, typed as documented.
fn assert_shape(entitlements: &Value) {
    let map = entitlements.as_object().expect("entitlements is an object");
    for (name, e) in map {
        let mut keys: Vec<&str> = e
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let expected = [
            "active",
            "expires_at",
            "in_grace_period",
            "product_id",
            "source",
            "will_renew",
        ];
        assert_eq!(keys, expected, "{name}: {e}");
        assert!(
            e["active"].is_boolean() && e["will_renew"].is_boolean(),
            "{name}: {e}"
        );
        assert!(e["in_grace_period"].is_boolean(), "{name}: {e}");
        assert!(
            e["product_id"].is_null() || e["product_id"].is_string(),
            "{name}: {e}"
        );
        let source = e["source"].as_str().expect("source is a string");
        assert!(
            ["revenuecat", "stripe", "manual"].contains(&source),
            "{name}: {e}"
        );
        match &e["expires_at"] {
            Value::Null => {}
            Value::String(s) => {
                DateTime::parse_from_rfc3339(s).unwrap_or_else(|err| panic!("{name}: {s}: {err}"));
            }
            other => panic!("{name}: expires_at is {other}"),
        }
    }
}

struct Pro;

impl EntitlementName for Pro {
    const NAME: &'static str = "pro";
}

async fn premium(Entitled(user, _): Entitled<Pro>) -> String {
    format!("premium for {}", user.user_id)
}

fn paywalled() -> Router<AppState> {
    Router::new().route("/app/premium", get(premium))
}

keel_testkit::engine_test!(admin_grants_are_manual_entitlements_and_audited);
async fn admin_grants_are_manual_entitlements_and_audited(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let user = "grantee-1";
    let path = format!("/admin/api/users/{user}/grants");
    let body = json!({ "entitlement": "beta", "expires_at": null, "reason": "tester" });
    send(&app, Method::POST, &path, None, Some(&body))
        .await
        .problem(401, "unauthorized");
    let wrong = send(
        &app,
        Method::POST,
        &path,
        Some("not-the-admin-token"),
        Some(&body),
    )
    .await;
    assert_eq!(wrong.status, 401, "{}", wrong.text);
    send(&app, Method::POST, &path, Some(&token(user)), Some(&body))
        .await
        .problem(403, "admin-required");
    assert!(
        audit(&app, user).await.is_empty(),
        "refused calls wrote nothing"
    );

    let r = grant(&app, user, "beta", Value::Null).await;
    assert_eq!(
        r.ok(200)["entitlements"]["beta"]["active"],
        true,
        "{}",
        r.text
    );
    let beta = json!({
        "active": true, "expires_at": null, "source": "manual", "product_id": null,
        "will_renew": false, "in_grace_period": false,
    });
    assert_eq!(entitlements(&app, user).await["beta"], beta);

    // A grant that ends in the past is shown, inactive; one that ends later is active until then.
    grant(&app, user, "alpha", json!(at(-chrono::Duration::hours(1))))
        .await
        .ok(200);
    let until = at(chrono::Duration::days(3));
    grant(&app, user, "gamma", json!(until)).await.ok(200);
    let e = entitlements(&app, user).await;
    assert_eq!(e["alpha"]["active"], false, "{e}");
    assert_eq!(e["alpha"]["source"], "manual", "{e}");
    assert_eq!(e["gamma"]["active"], true, "{e}");
    let shown = DateTime::parse_from_rfc3339(e["gamma"]["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(shown, DateTime::parse_from_rfc3339(&until).unwrap(), "{e}");

    // Invalid grants are 422 problems naming the field, and grant nothing.
    let missing = json!({ "entitlement": "delta", "expires_at": null });
    let r = admin(&app, Method::POST, &path, Some(&missing)).await;
    let errors = r.problem(422, "validation-failed")["errors"]
        .as_array()
        .expect("errors")
        .clone();
    assert!(
        !errors.is_empty() && errors[0]["message"].as_str().unwrap().contains("reason"),
        "{}",
        r.text
    );
    for (bad, field) in [
        (
            json!({ "entitlement": "", "expires_at": null, "reason": "tester" }),
            "entitlement",
        ),
        (
            json!({ "entitlement": "a\u{1}b", "expires_at": null, "reason": "tester" }),
            "entitlement",
        ),
        (
            json!({ "entitlement": "x".repeat(256), "expires_at": null, "reason": "tester" }),
            "entitlement",
        ),
        (
            json!({ "entitlement": "delta", "expires_at": null, "reason": "  " }),
            "reason",
        ),
        (
            json!({ "entitlement": 7, "expires_at": null, "reason": "tester" }),
            "entitlement",
        ),
        (
            json!({ "entitlement": "delta", "expires_at": "tomorrow", "reason": "tester" }),
            "expires_at",
        ),
    ] {
        let r = admin(&app, Method::POST, &path, Some(&bad)).await;
        let errors = &r.problem(422, "validation-failed")["errors"];
        assert_eq!(errors[0]["field"], field, "{bad}: {}", r.text);
    }
    let e = entitlements(&app, user).await;
    assert!(e.get("delta").is_none() && e.get("").is_none(), "{e}");

    // Revoking a manual grant hides it until the next grant.
    let r = admin(&app, Method::DELETE, &format!("{path}/beta"), None).await;
    assert_eq!(
        r.ok(200)["entitlements"]["beta"]["active"],
        false,
        "{}",
        r.text
    );
    assert_eq!(entitlements(&app, user).await["beta"]["active"], false);
    send(&app, Method::DELETE, &format!("{path}/beta"), None, None)
        .await
        .problem(401, "unauthorized");
    grant(&app, user, "beta", Value::Null).await.ok(200);
    assert!(active(&app, user, "beta").await);

    let rows = audit(&app, user).await;
    let actions: Vec<&str> = rows.iter().map(|r| r["action"].as_str().unwrap()).collect();
    let expected = [
        "entitlement.grant",
        "entitlement.revoke",
        "entitlement.grant",
        "entitlement.grant",
        "entitlement.grant",
    ];
    assert_eq!(actions, expected, "{rows:#?}");
    for row in &rows {
        assert_eq!(row["actor"], "admin-token", "{row}");
        assert_eq!(row["target"], user, "{row}");
    }
    assert_eq!(rows[1]["metadata"]["entitlement"], "beta", "{:#}", rows[1]);
    assert_eq!(rows[4]["metadata"]["reason"], "tester", "{:#}", rows[4]);

    // The operator's view of the user.
    let r = admin(
        &app,
        Method::GET,
        &format!("/admin/api/users/{user}/entitlements"),
        None,
    )
    .await;
    assert_eq!(r.ok(200)["entitlements"], entitlements(&app, user).await);
    let r = admin(&app, Method::GET, &format!("/admin/api/users/{user}"), None).await;
    assert_eq!(r.ok(200)["id"], user);
    assert_eq!(r.body["entitlements"]["beta"], beta, "{}", r.text);
    send(
        &app,
        Method::GET,
        &format!("/admin/api/users/{user}"),
        None,
        None,
    )
    .await
    .problem(401, "unauthorized");
    let r = admin(&app, Method::GET, "/admin/api/users/nobody-at-all", None).await;
    r.problem(404, "not-found");
    let r = admin(
        &app,
        Method::GET,
        "/admin/api/users/nobody-at-all/entitlements",
        None,
    )
    .await;
    assert_eq!(r.ok(200)["entitlements"], json!({}));
    // A user who only signed in is found, with no entitlements.
    send(&app, Method::GET, "/v1/me", Some(&token("visitor-1")), None)
        .await
        .ok(200);
    let r = admin(&app, Method::GET, "/admin/api/users/visitor-1", None).await;
    assert_eq!(r.ok(200)["user"]["id"], "visitor-1", "{}", r.text);
    assert_eq!(r.body["entitlements"], json!({}), "{}", r.text);
}

keel_testkit::engine_test!(revocation_hides_a_purchase_until_it_ends);
async fn revocation_hides_a_purchase_until_it_ends(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let user = "1234567890";
    let event = set(
        fixture("revenuecat", "initial_purchase"),
        "/event/expiration_at_ms",
        json!(ms_in_days(7)),
    );
    assert_eq!(revenuecat(&app, &event).await.status, 200);
    assert!(active(&app, user, "pro").await);
    let r = admin(&app, Method::GET, &format!("/admin/api/users/{user}"), None).await;
    assert_eq!(
        r.ok(200)["entitlements"]["pro"]["source"],
        "revenuecat",
        "{}",
        r.text
    );

    let path = format!("/admin/api/users/{user}/grants/pro");
    let r = admin(&app, Method::DELETE, &path, None).await;
    assert_eq!(
        r.ok(200)["entitlements"]["pro"]["active"],
        false,
        "{}",
        r.text
    );
    assert!(
        !active(&app, user, "pro").await,
        "the revocation hides the purchase"
    );

    let until = Utc::now() + chrono::Duration::seconds(1);
    let query = until.to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut request = app.client.delete(app.url(&path)).bearer_auth(ADMIN);
    request = request.query(&[("until", query.as_str()), ("reason", "cool-down")]);
    let response = request.send().await.expect("request");
    assert_eq!(response.status(), 200);
    assert!(!active(&app, user, "pro").await, "revoked until {query}");
    let wait = (until - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(300);
    tokio::time::sleep(wait).await;
    let e = entitlements(&app, user).await;
    assert_eq!(e["pro"]["active"], true, "the revocation ended: {e}");
    assert_eq!(e["pro"]["source"], "revenuecat", "{e}");

    let bad = admin(&app, Method::DELETE, &format!("{path}?until=soon"), None).await;
    assert_eq!(bad.status, 400, "{}", bad.text);

    let rows = audit(&app, user).await;
    let revokes: Vec<&Value> = rows
        .iter()
        .filter(|r| r["action"] == "entitlement.revoke")
        .collect();
    assert_eq!(revokes.len(), 2, "{rows:#?}");
    assert!(
        revokes.iter().all(|r| r["actor"] == "admin-token"),
        "{rows:#?}"
    );
    assert_eq!(revokes[0]["metadata"]["reason"], "cool-down", "{rows:#?}");
    assert!(!revokes[0]["metadata"]["expires_at"].is_null(), "{rows:#?}");
}

keel_testkit::engine_test!(every_entitlement_has_the_documented_shape);
async fn every_entitlement_has_the_documented_shape(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let user = "shaped-1";
    buy(&app, user).await;
    let now = Utc::now();
    for kind in [
        "checkout.session.completed",
        "customer.subscription.created",
    ] {
        let event = stripe_sample(kind, user, "prod_premium", now);
        assert_eq!(stripe(&app, &event).await.status, 200);
    }
    grant(&app, user, "beta", Value::Null).await.ok(200);
    grant(&app, user, "gamma", json!(at(chrono::Duration::days(2))))
        .await
        .ok(200);
    grant(&app, user, "old", json!(at(-chrono::Duration::days(2))))
        .await
        .ok(200);
    admin(
        &app,
        Method::DELETE,
        &format!("/admin/api/users/{user}/grants/revoked"),
        None,
    )
    .await
    .ok(200);

    let e = entitlements(&app, user).await;
    let mut names: Vec<&String> = e.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(
        names,
        ["beta", "gamma", "old", "premium", "pro", "revoked"],
        "{e}"
    );
    assert_shape(&e);
    assert_eq!(e["premium"]["source"], "stripe", "{e}");
    assert_eq!(e["pro"]["source"], "revenuecat", "{e}");
    assert!(e["pro"]["expires_at"].is_string(), "{e}");
    let r = admin(
        &app,
        Method::GET,
        &format!("/admin/api/users/{user}/entitlements"),
        None,
    )
    .await;
    assert_shape(&r.ok(200)["entitlements"]);
    assert_eq!(entitlements(&app, "nobody-bought").await, json!({}));

    let r = send(&app, Method::GET, "/v1/me/entitlements", None, None).await;
    r.problem(401, "unauthorized");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = send(
        &app,
        Method::GET,
        "/v1/me/entitlements",
        Some("not.a.token"),
        None,
    )
    .await;
    r.problem(401, "invalid-token");
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
}

/// A second handle on a Postgres test database, for a second app on the same schema. Both handles
/// drop the schema (`IF EXISTS`), so whichever drops last finds nothing to do.
fn share(db: &TestDb) -> TestDb {
    match db {
        TestDb::Postgres { base, schema, url } => TestDb::Postgres {
            base: base.clone(),
            schema: schema.clone(),
            url: url.clone(),
        },
        TestDb::Sqlite { .. } => unreachable!("Postgres only"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_sees_a_purchase_and_a_revocation_within_five_seconds() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let (_dir, config) = config_dir();
    let second = share(&db);
    let a = app(db, &config).spawn().await;
    let b = app(second, &config).spawn().await;
    let user = "cached-1";
    // B reads (and caches) the user's entitlements: nothing yet.
    assert!(!active(&b, user, "pro").await);
    buy(&a, user).await;
    assert!(
        active(&a, user, "pro").await,
        "the receiving process sees it at once"
    );
    let started = Instant::now();
    eventually(
        "the other process sees the purchase",
        Duration::from_secs(6),
        || active(&b, user, "pro"),
    )
    .await;
    let took = started.elapsed();
    eprintln!("purchase seen by B after {took:?}");
    assert!(took < Duration::from_secs(5), "purchase took {took:?}");

    // B has just cached the active purchase; A revokes it.
    assert!(active(&b, user, "pro").await);
    let path = format!("/admin/api/users/{user}/grants/pro");
    admin(&a, Method::DELETE, &path, None).await.ok(200);
    assert!(!active(&a, user, "pro").await);
    let started = Instant::now();
    eventually(
        "the other process sees the revocation",
        Duration::from_secs(6),
        || async { !active(&b, user, "pro").await },
    )
    .await;
    let took = started.elapsed();
    eprintln!("revocation seen by B after {took:?}");
    assert!(took < Duration::from_secs(5), "revocation took {took:?}");
}
