//! Shared by the billing tests: an app with both providers enabled, signed deliveries in each
//! provider's wire format, the documented sample events, and user tokens.

#![allow(dead_code)]

use std::path::PathBuf;

use keel_testkit::{TestApp, TestAppBuilder, TestDb};
use reqwest::StatusCode;
use serde_json::{json, Value};

pub const RC_SECRET: &str = "revenuecat-webhook-secret-0123456789abcdef";
pub const STRIPE_SECRET: &str = "whsec_stripe-secret-for-tests-0123456789";
pub const OLD_STRIPE_SECRET: &str = "whsec_old-stripe-secret-for-tests-012345";
pub const HS_SECRET: &str = "hs256-secret-for-tests-0123456789abcdef";
pub const ADMIN: &str = "admin-token-for-tests-0123456789abcdef";
pub const RC_API_KEY: &str = "sk_revenuecat-api-key-for-tests-012345";
/// Two data keys: `k2` newest.
pub const KEY_1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const KEY_2: &str = "k2:HxwdHhscGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";
pub const PRODUCTS: &str = r#"
[products]
"com.subscription.weekly" = ["pro"]
"com.subscription.monthly" = ["pro"]
prod_premium = ["premium"]
price_monthly = ["premium"]
"#;

/// A `keel.toml` with the product mapping, in a directory the caller keeps alive.
pub fn config_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keel.toml");
    std::fs::write(&path, PRODUCTS).expect("write keel.toml");
    (dir, path)
}

/// An app with RevenueCat and Stripe enabled, HS256 tokens, the admin token and the data keys.
pub fn app(db: TestDb, config: &std::path::Path) -> TestAppBuilder {
    TestApp::builder(db)
        .env("AUTH_HS256_SECRET", HS_SECRET)
        .env("ADMIN_TOKEN", ADMIN)
        .env("REVENUECAT_WEBHOOK_SECRET", RC_SECRET)
        .env(
            "STRIPE_WEBHOOK_SECRET",
            &format!("{OLD_STRIPE_SECRET},{STRIPE_SECRET}"),
        )
        .env("DATA_ENCRYPTION_KEYS", KEY_1)
        .env("KEEL_CONFIG", config.to_str().expect("utf-8 path"))
}

/// An HS256 token for `user`, valid for an hour.
pub fn token(user: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({ "sub": user, "iat": now, "exp": now + 3600 });
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, HS_SECRET.as_bytes());
    let sig = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

/// A documented sample event from `tests/fixtures/{provider}/{name}.json`.
pub fn fixture(provider: &str, name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(provider)
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// `value` with the JSON pointer `pointer` set to `new`.
pub fn set(mut value: Value, pointer: &str, new: Value) -> Value {
    *value
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} not in the event")) = new;
    value
}

pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer { status, body }
}

/// Delivers a RevenueCat event with `authorization` as the header (None: no header).
pub async fn revenuecat_raw(app: &TestApp, authorization: Option<&str>, body: &[u8]) -> Answer {
    let mut request = reqwest::Client::new()
        .post(app.url("/webhooks/revenuecat"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(a) = authorization {
        request = request.header("authorization", a);
    }
    answer(request.send().await.expect("request")).await
}

/// Delivers a RevenueCat event with the right authorization.
pub async fn revenuecat(app: &TestApp, event: &Value) -> Answer {
    revenuecat_raw(
        app,
        Some(&format!("Bearer {RC_SECRET}")),
        event.to_string().as_bytes(),
    )
    .await
}

/// The sample Stripe event of `kind` (as `keel dev webhook` sends it) for `user` subscribed to
/// `product`, happening `now`.
pub fn stripe_sample(
    kind: &str,
    user: &str,
    product: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    use keel::billing::BillingProvider;
    keel::billing::Stripe
        .sample(kind, user, product, now)
        .unwrap_or_else(|| panic!("Stripe makes no sample {kind:?}"))
}

/// The `Stripe-Signature` header for `body` at `timestamp` under `secret`.
pub fn stripe_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        keel::billing::stripe::sign(secret, timestamp, body)
    )
}

/// Delivers a Stripe event with `signature` as the header (None: no header).
pub async fn stripe_raw(app: &TestApp, signature: Option<&str>, body: &[u8]) -> Answer {
    let mut request = reqwest::Client::new()
        .post(app.url("/webhooks/stripe"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(s) = signature {
        request = request.header("stripe-signature", s);
    }
    answer(request.send().await.expect("request")).await
}

/// Delivers a Stripe event signed now with the current secret.
pub async fn stripe(app: &TestApp, event: &Value) -> Answer {
    let body = event.to_string();
    let signature = stripe_signature(
        STRIPE_SECRET,
        chrono::Utc::now().timestamp(),
        body.as_bytes(),
    );
    stripe_raw(app, Some(&signature), body.as_bytes()).await
}

/// `GET /v1/me/entitlements` as `user`: the `entitlements` object.
pub async fn entitlements(app: &TestApp, user: &str) -> Value {
    let response = reqwest::Client::new()
        .get(app.url("/v1/me/entitlements"))
        .bearer_auth(token(user))
        .send()
        .await
        .expect("request");
    let a = answer(response).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a.body["entitlements"].clone()
}

/// Whether `name` is active for `user`.
pub async fn active(app: &TestApp, user: &str, name: &str) -> bool {
    entitlements(app, user).await[name]["active"] == json!(true)
}

/// Milliseconds since the epoch, `days` from now.
pub fn ms_in_days(days: i64) -> i64 {
    (chrono::Utc::now() + chrono::Duration::days(days)).timestamp_millis()
}
