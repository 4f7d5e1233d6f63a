//! The billing API over real HTTP: manual grants and revocations (audited), forward auth, the
//! paywall extractor, RevenueCat sync against a fake REST API, the reconcile job after a webhook,
//! the cross-process entitlement cache and the shape of every entitlement.

mod billing_support;

use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use billing_support::*;
use chrono::{DateTime, SecondsFormat, Utc};
use keel::http::{AppState, Entitled, EntitlementName};
use keel_testkit::{FakeRevenueCat, TestApp, TestDb};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PROBLEMS: &str = "https://keel.dev/problems/";

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
    body: Value,
}

impl Reply {
    /// Asserts the status and returns the body.
    fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        &self.body
    }

    /// Asserts a problem+json answer of `status` and `slug`.
    fn problem(&self, status: u16, slug: &str) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        let content_type = self.headers["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("application/problem+json"),
            "{content_type}"
        );
        assert_eq!(
            self.body["type"],
            format!("{PROBLEMS}{slug}"),
            "{}",
            self.text
        );
        assert_eq!(self.body["status"], status, "{}", self.text);
        &self.body
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header"))
    }
}

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
    let response = request.send().await.expect("request");
    let (status, headers) = (response.status(), response.headers().clone());
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        body,
    }
}

async fn admin(app: &TestApp, method: Method, path: &str, body: Option<&Value>) -> Reply {
    send(app, method, path, Some(ADMIN), body).await
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

/// Polls `check` every 200 ms until it holds or `limit` passes; returns the time it took.
async fn eventually<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return Some(started.elapsed());
        }
        if started.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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

keel_testkit::engine_tests! {
    async fn admin_grants_are_manual_entitlements_and_audited(db) {
        let (_dir, config) = config_dir();
        let app = app(db, &config).spawn().await;
        let user = "grantee-1";
        let path = format!("/admin/api/users/{user}/grants");
        let body = json!({ "entitlement": "beta", "expires_at": null, "reason": "tester" });
        send(&app, Method::POST, &path, None, Some(&body)).await.problem(401, "unauthorized");
        let wrong = send(&app, Method::POST, &path, Some("not-the-admin-token"), Some(&body)).await;
        assert_eq!(wrong.status, 401, "{}", wrong.text);
        send(&app, Method::POST, &path, Some(&token(user)), Some(&body)).await.problem(403, "admin-required");
        assert!(audit(&app, user).await.is_empty(), "refused calls wrote nothing");

        let r = grant(&app, user, "beta", Value::Null).await;
        assert_eq!(r.ok(200)["entitlements"]["beta"]["active"], true, "{}", r.text);
        let beta = json!({
            "active": true, "expires_at": null, "source": "manual", "product_id": null,
            "will_renew": false, "in_grace_period": false,
        });
        assert_eq!(entitlements(&app, user).await["beta"], beta);

        // A grant that ends in the past is shown, inactive; one that ends later is active until then.
        grant(&app, user, "alpha", json!(at(-chrono::Duration::hours(1)))).await.ok(200);
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
        let errors = r.problem(422, "validation-failed")["errors"].as_array().expect("errors").clone();
        assert!(!errors.is_empty() && errors[0]["message"].as_str().unwrap().contains("reason"), "{}", r.text);
        for (bad, field) in [
            (json!({ "entitlement": "", "expires_at": null, "reason": "tester" }), "entitlement"),
            (json!({ "entitlement": "a\u{1}b", "expires_at": null, "reason": "tester" }), "entitlement"),
            (json!({ "entitlement": "x".repeat(256), "expires_at": null, "reason": "tester" }), "entitlement"),
            (json!({ "entitlement": "delta", "expires_at": null, "reason": "  " }), "reason"),
            (json!({ "entitlement": 7, "expires_at": null, "reason": "tester" }), "entitlement"),
            (json!({ "entitlement": "delta", "expires_at": "tomorrow", "reason": "tester" }), "expires_at"),
        ] {
            let r = admin(&app, Method::POST, &path, Some(&bad)).await;
            let errors = &r.problem(422, "validation-failed")["errors"];
            assert_eq!(errors[0]["field"], field, "{bad}: {}", r.text);
        }
        let e = entitlements(&app, user).await;
        assert!(e.get("delta").is_none() && e.get("").is_none(), "{e}");

        // Revoking a manual grant hides it until the next grant.
        let r = admin(&app, Method::DELETE, &format!("{path}/beta"), None).await;
        assert_eq!(r.ok(200)["entitlements"]["beta"]["active"], false, "{}", r.text);
        assert_eq!(entitlements(&app, user).await["beta"]["active"], false);
        send(&app, Method::DELETE, &format!("{path}/beta"), None, None).await.problem(401, "unauthorized");
        grant(&app, user, "beta", Value::Null).await.ok(200);
        assert!(active(&app, user, "beta").await);

        let rows = audit(&app, user).await;
        let actions: Vec<&str> = rows.iter().map(|r| r["action"].as_str().unwrap()).collect();
        let expected = ["entitlement.grant", "entitlement.revoke", "entitlement.grant", "entitlement.grant", "entitlement.grant"];
        assert_eq!(actions, expected, "{rows:#?}");
        for row in &rows {
            assert_eq!(row["actor"], "admin-token", "{row}");
            assert_eq!(row["target"], user, "{row}");
        }
        assert_eq!(rows[1]["metadata"]["entitlement"], "beta", "{:#}", rows[1]);
        assert_eq!(rows[4]["metadata"]["reason"], "tester", "{:#}", rows[4]);

        // The operator's view of the user.
        let r = admin(&app, Method::GET, &format!("/admin/api/users/{user}/entitlements"), None).await;
        assert_eq!(r.ok(200)["entitlements"], entitlements(&app, user).await);
        let r = admin(&app, Method::GET, &format!("/admin/api/users/{user}"), None).await;
        assert_eq!(r.ok(200)["id"], user);
        assert_eq!(r.body["entitlements"]["beta"], beta, "{}", r.text);
        send(&app, Method::GET, &format!("/admin/api/users/{user}"), None, None).await.problem(401, "unauthorized");
        let r = admin(&app, Method::GET, "/admin/api/users/nobody-at-all", None).await;
        r.problem(404, "not-found");
        let r = admin(&app, Method::GET, "/admin/api/users/nobody-at-all/entitlements", None).await;
        assert_eq!(r.ok(200)["entitlements"], json!({}));
        // A user who only signed in is found, with no entitlements.
        send(&app, Method::GET, "/v1/me", Some(&token("visitor-1")), None).await.ok(200);
        let r = admin(&app, Method::GET, "/admin/api/users/visitor-1", None).await;
        assert_eq!(r.ok(200)["user"]["id"], "visitor-1", "{}", r.text);
        assert_eq!(r.body["entitlements"], json!({}), "{}", r.text);
    }

    async fn revocation_hides_a_purchase_until_it_ends(db) {
        let (_dir, config) = config_dir();
        let app = app(db, &config).spawn().await;
        let user = "1234567890";
        let event = set(fixture("revenuecat", "initial_purchase"), "/event/expiration_at_ms", json!(ms_in_days(7)));
        assert_eq!(revenuecat(&app, &event).await.status, 200);
        assert!(active(&app, user, "pro").await);
        let r = admin(&app, Method::GET, &format!("/admin/api/users/{user}"), None).await;
        assert_eq!(r.ok(200)["entitlements"]["pro"]["source"], "revenuecat", "{}", r.text);

        let path = format!("/admin/api/users/{user}/grants/pro");
        let r = admin(&app, Method::DELETE, &path, None).await;
        assert_eq!(r.ok(200)["entitlements"]["pro"]["active"], false, "{}", r.text);
        assert!(!active(&app, user, "pro").await, "the revocation hides the purchase");

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
        let revokes: Vec<&Value> = rows.iter().filter(|r| r["action"] == "entitlement.revoke").collect();
        assert_eq!(revokes.len(), 2, "{rows:#?}");
        assert!(revokes.iter().all(|r| r["actor"] == "admin-token"), "{rows:#?}");
        assert_eq!(revokes[0]["metadata"]["reason"], "cool-down", "{rows:#?}");
        assert!(!revokes[0]["metadata"]["expires_at"].is_null(), "{rows:#?}");
    }

    async fn forward_auth_reports_and_requires_entitlements(db) {
        let (_dir, config) = config_dir();
        let app = app(db, &config).spawn().await;
        let user = "forwarded-1";
        buy(&app, user).await;
        grant(&app, user, "beta", Value::Null).await.ok(200);
        grant(&app, user, "old", json!(at(-chrono::Duration::days(1)))).await.ok(200);
        let bearer = token(user);

        let r = send(&app, Method::GET, "/v1/auth/check", Some(&bearer), None).await;
        r.ok(200);
        assert_eq!(r.header("x-entitlements"), Some("beta,pro"));
        assert_eq!(r.header("x-user-id"), Some(user));
        let r = send(&app, Method::GET, "/v1/auth/check?entitlement=pro", Some(&bearer), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        for path in ["/v1/auth/check?entitlement=premium", "/v1/auth/check?entitlement=old"] {
            let r = send(&app, Method::GET, path, Some(&bearer), None).await;
            let name = path.rsplit('=').next().unwrap();
            let detail = r.problem(403, "entitlement-required")["detail"].as_str().unwrap();
            assert!(detail.contains(name), "{detail}");
        }

        let check = |required: &'static str, bearer: String| {
            let request = app.client.get(app.url("/v1/auth/check")).bearer_auth(bearer);
            request.header("x-required-entitlement", required).send()
        };
        assert_eq!(check("pro", bearer.clone()).await.unwrap().status(), 200);
        let refused = check("premium", bearer.clone()).await.unwrap();
        assert_eq!(refused.status(), 403);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["type"], format!("{PROBLEMS}entitlement-required"));
        assert!(body["detail"].as_str().unwrap().contains("premium"), "{body}");
        // An empty query value does not hide the header's requirement.
        let request = app.client.get(app.url("/v1/auth/check?entitlement=")).bearer_auth(bearer.clone());
        let refused = request.header("x-required-entitlement", "premium").send().await.unwrap();
        assert_eq!(refused.status(), 403);

        let r = send(&app, Method::GET, "/v1/auth/check", Some(&token("nothing-bought")), None).await;
        assert_eq!(r.ok(200), &Value::Null);
        assert_eq!(r.header("x-entitlements"), Some(""));
        let r = send(&app, Method::GET, "/v1/auth/check?entitlement=pro", None, None).await;
        r.problem(401, "unauthorized");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        let r = send(&app, Method::GET, "/v1/auth/check", Some("garbage"), None).await;
        r.problem(401, "invalid-token");
    }

    async fn the_paywall_extractor_guards_application_routes(db) {
        let (_dir, config) = config_dir();
        let app = app(db, &config).routes(paywalled()).spawn().await;
        let user = "paywalled-1";
        send(&app, Method::GET, "/app/premium", None, None).await.problem(401, "unauthorized");
        let r = send(&app, Method::GET, "/app/premium", Some(&token(user)), None).await;
        assert!(r.problem(403, "entitlement-required")["detail"].as_str().unwrap().contains("pro"));
        buy(&app, user).await;
        let r = send(&app, Method::GET, "/app/premium", Some(&token(user)), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.text, format!("premium for {user}"));
        // Another user's purchase opens nothing for this one.
        let r = send(&app, Method::GET, "/app/premium", Some(&token("paywalled-2")), None).await;
        r.problem(403, "entitlement-required");
    }

    async fn sync_asks_revenuecat_and_records_the_answer(db) {
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
            let r = send(&app, Method::POST, "/v1/me/entitlements/sync", Some(&token(user)), None).await;
            let pro = &r.ok(200)["entitlements"]["pro"];
            assert_eq!(pro["active"], true, "{}", r.text);
            assert_eq!(pro["source"], "revenuecat", "{}", r.text);
            assert_eq!(pro["product_id"], "com.subscription.monthly", "{}", r.text);
            assert_eq!(pro["will_renew"], true, "{}", r.text);
            let shown: DateTime<Utc> = serde_json::from_value(pro["expires_at"].clone()).unwrap();
            assert!((shown - expires).num_seconds().abs() <= 1, "{shown} vs {expires}");
            assert_shape(&r.body["entitlements"]);
            assert_eq!(entitlements(&app, user).await, r.body["entitlements"]);
        }
        assert_eq!(fake.requests(), 2);
        assert_eq!(fake.last_path().as_deref(), Some("/v1/subscribers/user%201%2F2"));

        fake.fail_with(Some(503));
        let r = send(&app, Method::POST, "/v1/me/entitlements/sync", Some(&token("synced-1")), None).await;
        r.problem(502, "revenuecat-unavailable");
        assert!(!r.text.contains(RC_API_KEY) && !r.text.contains("Bearer"), "{}", r.text);
        assert!(active(&app, "synced-1", "pro").await, "a failed sync changes nothing");
        fake.fail_with(None);

        let r = send(&app, Method::POST, "/v1/me/entitlements/sync", None, None).await;
        r.problem(401, "unauthorized");
        assert_eq!(fake.requests(), 3, "no token, no request to RevenueCat");

        // What RevenueCat says now (expired yesterday) replaces the webhook's state (7 days).
        let yesterday = Utc::now() - chrono::Duration::days(1);
        fake.set_entitlement("synced-3", "pro", "com.subscription.weekly", Some(yesterday));
        buy(&app, "synced-3").await;
        let r = send(&app, Method::POST, "/v1/me/entitlements/sync", Some(&token("synced-3")), None).await;
        assert_eq!(r.ok(200)["entitlements"]["pro"]["active"], false, "{}", r.text);
        assert!(!active(&app, "synced-3", "pro").await);
    }

    async fn sync_with_a_key_revenuecat_refuses_is_a_bad_gateway(db) {
        let fake = FakeRevenueCat::start("sk_some-other-key-0123456789").await;
        let (_dir, config) = config_dir();
        let app = app(db, &config)
            .env("REVENUECAT_API_KEY", RC_API_KEY)
            .env("REVENUECAT_API_URL", &fake.url())
            .spawn()
            .await;
        let r = send(&app, Method::POST, "/v1/me/entitlements/sync", Some(&token("refused-1")), None).await;
        r.problem(502, "revenuecat-unavailable");
        assert!(!r.text.contains(RC_API_KEY) && !r.text.contains("Bearer"), "{}", r.text);
        assert_eq!(fake.requests(), 1);
    }

    async fn sync_without_an_api_key_is_not_configured(db) {
        let (_dir, config) = config_dir();
        let app = app(db, &config).spawn().await;
        let r = send(&app, Method::POST, "/v1/me/entitlements/sync", Some(&token("unsynced-1")), None).await;
        let detail = r.problem(404, "not-configured")["detail"].as_str().unwrap();
        assert!(detail.contains("REVENUECAT_API_KEY"), "{detail}");
        send(&app, Method::POST, "/v1/me/entitlements/sync", None, None).await.problem(401, "unauthorized");
    }

    async fn a_revenuecat_webhook_enqueues_a_reconciling_sync(db) {
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
        let jobs = admin(&app, Method::GET, "/admin/api/jobs?kind=billing.revenuecat.sync", None).await;
        let jobs = jobs.ok(200).as_array().expect("jobs").clone();
        assert_eq!(jobs.len(), 1, "{jobs:#?}");
        assert_eq!(jobs[0]["kind"], "billing.revenuecat.sync");
        assert_eq!(jobs[0]["unique_key"], format!("billing.revenuecat.sync:{user}"));

        let asked = eventually(Duration::from_secs(10), || async { fake.requests() >= 1 }).await;
        assert!(asked.is_some(), "the worker did not ask RevenueCat within 10 s");
        assert_eq!(fake.last_path().as_deref(), Some(format!("/v1/subscribers/{user}").as_str()));
        // The subscriber's answer (30 days) replaces the webhook's state (7 days).
        let synced = eventually(Duration::from_secs(10), || async {
            let e = entitlements(&app, user).await;
            let shown: Option<DateTime<Utc>> = serde_json::from_value(e["pro"]["expires_at"].clone()).ok();
            shown.is_some_and(|s| (s - expires).num_seconds().abs() <= 1)
        })
        .await;
        assert!(synced.is_some(), "{}", entitlements(&app, user).await);
        let done = eventually(Duration::from_secs(10), || async {
            let r = admin(&app, Method::GET, "/admin/api/jobs?kind=billing.revenuecat.sync", None).await;
            r.body[0]["state"] == "completed"
        })
        .await;
        assert!(done.is_some(), "the sync job did not complete");
    }

    async fn without_an_api_key_a_webhook_enqueues_no_sync(db) {
        let (_dir, config) = config_dir();
        let app = app(db, &config).spawn().await;
        buy(&app, "unreconciled-1").await;
        assert!(active(&app, "unreconciled-1", "pro").await);
        let r = admin(&app, Method::GET, "/admin/api/jobs?kind=billing.revenuecat.sync", None).await;
        assert_eq!(r.ok(200), &json!([]));
    }

    async fn every_entitlement_has_the_documented_shape(db) {
        let (_dir, config) = config_dir();
        let app = app(db, &config).spawn().await;
        let user = "shaped-1";
        buy(&app, user).await;
        let now = Utc::now();
        for kind in ["checkout.session.completed", "customer.subscription.created"] {
            let event = stripe_sample(kind, user, "prod_premium", now);
            assert_eq!(stripe(&app, &event).await.status, 200);
        }
        grant(&app, user, "beta", Value::Null).await.ok(200);
        grant(&app, user, "gamma", json!(at(chrono::Duration::days(2)))).await.ok(200);
        grant(&app, user, "old", json!(at(-chrono::Duration::days(2)))).await.ok(200);
        admin(&app, Method::DELETE, &format!("/admin/api/users/{user}/grants/revoked"), None).await.ok(200);

        let e = entitlements(&app, user).await;
        let mut names: Vec<&String> = e.as_object().unwrap().keys().collect();
        names.sort();
        assert_eq!(names, ["beta", "gamma", "old", "premium", "pro", "revoked"], "{e}");
        assert_shape(&e);
        assert_eq!(e["premium"]["source"], "stripe", "{e}");
        assert_eq!(e["pro"]["source"], "revenuecat", "{e}");
        assert!(e["pro"]["expires_at"].is_string(), "{e}");
        let r = admin(&app, Method::GET, &format!("/admin/api/users/{user}/entitlements"), None).await;
        assert_shape(&r.ok(200)["entitlements"]);
        assert_eq!(entitlements(&app, "nobody-bought").await, json!({}));

        let r = send(&app, Method::GET, "/v1/me/entitlements", None, None).await;
        r.problem(401, "unauthorized");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        let r = send(&app, Method::GET, "/v1/me/entitlements", Some("not.a.token"), None).await;
        r.problem(401, "invalid-token");
        assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    }
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
    let took = eventually(Duration::from_secs(6), || active(&b, user, "pro")).await;
    let took = took.expect("the other process never saw the purchase");
    eprintln!("purchase seen by B after {took:?}");
    assert!(took < Duration::from_secs(5), "purchase took {took:?}");

    // B has just cached the active purchase; A revokes it.
    assert!(active(&b, user, "pro").await);
    let path = format!("/admin/api/users/{user}/grants/pro");
    admin(&a, Method::DELETE, &path, None).await.ok(200);
    assert!(!active(&a, user, "pro").await);
    let took = eventually(Duration::from_secs(6), || async {
        !active(&b, user, "pro").await
    })
    .await;
    let took = took.expect("the other process never saw the revocation");
    eprintln!("revocation seen by B after {took:?}");
    assert!(took < Duration::from_secs(5), "revocation took {took:?}");
}
