//! Whop user tokens: an ES256 token from a fake Whop key set (a P-256 key generated for the
//! test, served over HTTP on a free port) is accepted on `x-whop-user-token`; the attack matrix
//! (algorithm confusion, another key, wrong issuer or audience, expired, tampered) is refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use keel_testkit::{TestApp, TestDb};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

const APP_ID: &str = "app_TestApp123";
const ISSUER: &str = "urn:whopcom:exp-proxy";
const KID: &str = "whop-test-1";
const HS_SECRET: &str = "hs256-secret-for-tests-0123456789abcdef";

/// A P-256 key made now, never written anywhere.
struct Key {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Key {
    fn generate() -> Key {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Key { pair, rng }
    }

    /// The public JWK, as Whop publishes its keys.
    fn jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": KID,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        })
    }

    fn es256(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let sig = self.pair.sign(&self.rng, input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let sig = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

/// Serves `{"keys": [jwk]}` at `/.well-known/jwks.json` on a free port; the URL.
async fn serve_jwks(jwk: Value) -> String {
    let body = json!({ "keys": [jwk] });
    let router = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let body = body.clone();
            async move { axum::Json(body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/.well-known/jwks.json")
}

fn claims(user: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({ "sub": user, "aud": APP_ID, "iss": ISSUER, "iat": now, "exp": now + 300 })
}

fn with(mut value: Value, key: &str, new: Value) -> Value {
    value[key] = new;
    value
}

/// `GET /v1/me` with `token` in `header`: the status and body.
async fn me(app: &TestApp, header: &str, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(app.url("/v1/me"))
        .header(header, token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn whop_app(db: TestDb, jwks_url: &str) -> TestApp {
    TestApp::builder(db)
        .env("AUTH_TOKEN_HEADER", "x-whop-user-token")
        .env("WHOP_APP_ID", APP_ID)
        .env("WHOP_JWKS_URL", jwks_url)
        // A shared-secret verifier too: a Whop-issued token must not verify under it.
        .env("AUTH_HS256_SECRET", HS_SECRET)
        .spawn()
        .await
}

keel_testkit::engine_test!(whop_user_tokens_verify_on_their_header);
async fn whop_user_tokens_verify_on_their_header(db: TestDb) {
    let key = Key::generate();
    let app = whop_app(db, &serve_jwks(key.jwk()).await).await;
    let header = json!({ "alg": "ES256", "typ": "JWT", "kid": KID });
    let token = key.es256(&header, &claims("user_Whop42"));
    let (status, body) = me(&app, "x-whop-user-token", &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_id"], json!("user_Whop42"));
    let (status, _) = me(&app, "x-whop-user-token", &format!("Bearer {token}")).await;
    assert_eq!(status, 200);
    // Tokens are read from the configured header only.
    let (status, _) = me(&app, "authorization", &format!("Bearer {token}")).await;
    assert_eq!(status, 401);
    app.shutdown().await.unwrap();
}

keel_testkit::engine_test!(the_attack_matrix_is_refused);
async fn the_attack_matrix_is_refused(db: TestDb) {
    let key = Key::generate();
    let jwk = key.jwk();
    let app = whop_app(db, &serve_jwks(jwk.clone()).await).await;
    let es = json!({ "alg": "ES256", "typ": "JWT", "kid": KID });
    let good = claims("user_Whop42");
    let now = chrono::Utc::now().timestamp();
    let public_key = key.pair.public_key().as_ref().to_vec();
    let hs = |alg: &str| json!({ "alg": alg, "typ": "JWT", "kid": KID });
    let valid = key.es256(&es, &good);
    let mut parts: Vec<&str> = valid.split('.').collect();
    let forged_claims =
        URL_SAFE_NO_PAD.encode(with(good.clone(), "sub", json!("user_Admin")).to_string());
    parts[1] = &forged_claims;
    let tampered = parts.join(".");
    let none = format!("{}.", signing_input(&hs("none"), &good));
    let rs256 = format!(
        "{}.{}",
        signing_input(&hs("RS256"), &good),
        URL_SAFE_NO_PAD.encode([7u8; 256])
    );
    let cases: Vec<(&str, String)> = vec![
        (
            "HS256 under the configured secret",
            hs256(HS_SECRET.as_bytes(), &hs("HS256"), &good),
        ),
        (
            "HS256 keyed with the public key",
            hs256(&public_key, &hs("HS256"), &good),
        ),
        (
            "HS256 keyed with the JWK text",
            hs256(jwk.to_string().as_bytes(), &hs("HS256"), &good),
        ),
        ("alg none", none),
        ("RS256", rs256),
        (
            "another key under the same kid",
            Key::generate().es256(&es, &good),
        ),
        ("tampered claims", tampered),
        (
            "wrong issuer",
            key.es256(
                &es,
                &with(good.clone(), "iss", json!("https://whop.example")),
            ),
        ),
        (
            "wrong audience",
            key.es256(&es, &with(good.clone(), "aud", json!("app_Other"))),
        ),
        (
            "audience list",
            key.es256(&es, &with(good.clone(), "aud", json!([APP_ID]))),
        ),
        (
            "expired",
            key.es256(&es, &with(good.clone(), "exp", json!(now - 1))),
        ),
        (
            "no subject",
            key.es256(
                &es,
                &json!({ "aud": APP_ID, "iss": ISSUER, "exp": now + 300 }),
            ),
        ),
    ];
    for (case, token) in cases {
        let (status, body) = me(&app, "x-whop-user-token", &token).await;
        assert_eq!(status, 401, "{case}: {body}");
    }
    let (status, _) = me(&app, "x-whop-user-token", &valid).await;
    assert_eq!(status, 200, "the genuine token after the attacks");
    app.shutdown().await.unwrap();
}

/// Delivers a signed Whop sample event of `kind` for `user`, happening `ago` seconds ago; the
/// company it is in.
async fn whop_event(app: &TestApp, kind: &str, user: &str, ago: i64) -> String {
    use keel::billing::BillingProvider;
    let at = chrono::Utc::now() - chrono::Duration::seconds(ago);
    let event = keel::billing::Whop
        .sample(kind, user, "prod_pro", at)
        .unwrap();
    let body = event.to_string();
    let id = event["id"].as_str().unwrap();
    let secret = keel::crypto::standard_webhooks::WebhookSecret::parse(WEBHOOK_SECRET).unwrap();
    let now = chrono::Utc::now().timestamp();
    let response = reqwest::Client::new()
        .post(app.url("/webhooks/whop"))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", secret.sign(id, now, body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    event["company_id"].as_str().unwrap().to_string()
}

const WEBHOOK_SECRET: &str = "ws_whop-dashboard-secret-for-tests-0123456789abcdef";

/// `GET /team` (a route that asks for a tenant) as `token`, naming `company`.
async fn team(app: &TestApp, token: &str, company: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .get(app.url("/team"))
        .header("x-whop-user-token", token);
    if let Some(company) = company {
        request = request.header("x-whop-company-id", company);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

keel_testkit::engine_test!(a_whop_member_has_their_companys_tenant_while_the_membership_lasts);
async fn a_whop_member_has_their_companys_tenant_while_the_membership_lasts(db: TestDb) {
    use keel::http::{AppState, Tenant};
    let key = Key::generate();
    let route = axum::routing::get(|Tenant(tenant): Tenant| async move { tenant });
    let app = TestApp::builder(db)
        .env("AUTH_TOKEN_HEADER", "x-whop-user-token")
        .env("WHOP_APP_ID", APP_ID)
        .env("WHOP_JWKS_URL", &serve_jwks(key.jwk()).await)
        .env("WHOP_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .routes(axum::Router::<AppState>::new().route("/team", route))
        .spawn()
        .await;
    let header = json!({ "alg": "ES256", "typ": "JWT", "kid": KID });
    let token = key.es256(&header, &claims("user_Member"));
    let company = whop_event(&app, "membership.activated", "user_Member", 20).await;
    assert_eq!(
        team(&app, &token, Some(&company)).await,
        (200, company.clone())
    );
    let (status, body) = team(&app, &token, Some("biz_SomeoneElse")).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("tenant-required"), "{body}");
    assert_eq!(team(&app, &token, None).await.0, 403);
    // Another member's token is not a member of this company.
    let stranger = key.es256(&header, &claims("user_Stranger"));
    assert_eq!(team(&app, &stranger, Some(&company)).await.0, 403);
    whop_event(&app, "membership.deactivated", "user_Member", 10).await;
    assert_eq!(team(&app, &token, Some(&company)).await.0, 403);
    app.shutdown().await.unwrap();
}
