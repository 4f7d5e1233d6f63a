//! A churn app over real HTTP on a test database: a fake notifier (failing for chosen
//! companies), memberships delivered as signed Whop webhooks, and a shared test clock.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel::billing::BillingProvider;
use keel::clock::Clock;
use keel::config::{Settings, Source};
use keel::crypto::standard_webhooks::WebhookSecret;
use keel_testkit::TestDb;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use whop_churn::{store, Churn};

pub const WEBHOOK_SECRET: &str = "ws_whop-dashboard-secret-for-tests-0123456789abcdef";
pub const HS_SECRET: &str = "hs256-secret-for-tests-0123456789abcdef";
pub const ADMIN: &str = "user_Admin";
pub const LIMIT: Duration = Duration::from_secs(30);

/// What the notifier received: (company, tick) per POST, failing ones included.
#[derive(Clone, Default)]
pub struct Notifier {
    pub received: Arc<Mutex<Vec<(String, String)>>>,
    pub url: String,
}

impl Notifier {
    /// Serves on a free port; answers 500 for the companies in `failing`.
    pub async fn start(failing: Vec<String>) -> Notifier {
        let received: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let seen = received.clone();
        let route = axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let seen = seen.clone();
            let failing = failing.clone();
            async move {
                let company = body["company"].as_str().unwrap_or_default().to_string();
                let tick = body["tick"].as_str().unwrap_or_default().to_string();
                let fail = failing.contains(&company);
                seen.lock().unwrap().push((company, tick));
                if fail {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::NO_CONTENT
                }
            }
        });
        let router = axum::Router::new().route("/notify", route);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let url = format!("http://{}/notify", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Notifier { received, url }
    }

    /// How many POSTs named `company` for `tick`.
    pub fn count(&self, company: &str, tick: &str) -> usize {
        let received = self.received.lock().unwrap();
        received
            .iter()
            .filter(|(c, t)| c == company && t == tick)
            .count()
    }

    pub fn all(&self) -> Vec<(String, String)> {
        self.received.lock().unwrap().clone()
    }
}

/// One running churn process.
pub struct App {
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<Result<(), keel::runtime::RuntimeError>>,
}

impl App {
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.handle.await.unwrap().unwrap();
    }
}

/// The settings of a churn process on `db`, its `keel.toml` in `dir`.
pub fn settings(db: &TestDb, dir: &std::path::Path) -> Settings {
    let config = dir.join("keel.toml");
    std::fs::write(&config, whop_churn::SCHEDULES).unwrap();
    let pairs = [
        ("DATABASE_URL", db.url()),
        ("PORT", "0"),
        ("LOG_LEVEL", "warn"),
        ("KEEL_CONFIG", config.to_str().unwrap()),
        ("AUTH_HS256_SECRET", HS_SECRET),
        ("ADMIN_USER_IDS", ADMIN),
        ("WHOP_WEBHOOK_SECRET", WEBHOOK_SECRET),
    ];
    Settings::load(&Source::from_pairs(pairs, dir.to_path_buf())).unwrap()
}

/// Starts a churn process sharing `clock`, and waits until it is ready.
pub async fn start(settings: Settings, notifier: &Notifier, clock: &Clock) -> App {
    let db = keel::store::Db::connect_lazy(&settings.database).unwrap();
    store::ensure_schema(&db).await.unwrap();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let churn = Churn::new(notifier.url.clone(), clock.clone());
    let server = whop_churn::server(settings, churn);
    let handle = tokio::spawn(server.run_on(listener, async {
        let _ = stopped.await;
    }));
    let ready = format!("{url}/health/ready");
    keel_testkit::eventually("the app is ready", LIMIT, || async {
        let r = reqwest::get(&ready).await;
        r.is_ok_and(|r| r.status() == 200)
    })
    .await;
    App {
        url,
        stop: Some(stop),
        handle,
    }
}

/// The company Whop samples sell `product` in.
pub fn company_of(product: &str) -> String {
    let event = keel::billing::Whop
        .sample("membership.activated", "u", product, chrono::Utc::now())
        .unwrap();
    event["company_id"].as_str().unwrap().to_string()
}

/// Delivers a signed Whop sample: `user` asked to cancel `product` at the period end (so keeps
/// access but will not renew: at risk).
pub async fn canceling(app: &App, clock: &Clock, user: &str, product: &str) {
    let now = clock.now();
    let event = keel::billing::Whop
        .sample(
            "membership.cancel_at_period_end_changed",
            user,
            product,
            now,
        )
        .unwrap();
    let body = event.to_string();
    let id = event["id"].as_str().unwrap();
    let secret = WebhookSecret::parse(WEBHOOK_SECRET).unwrap();
    let ts = now.timestamp();
    let r = reqwest::Client::new()
        .post(format!("{}/webhooks/whop", app.url))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", secret.sign(id, ts, body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Moves `clock` to one second past the next five-minute boundary; the tick it starts.
pub fn next_tick(clock: &Clock) -> String {
    let now = clock.now();
    let into = now.timestamp().rem_euclid(300);
    let by = chrono::Duration::seconds(300 - into + 1)
        - chrono::Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos()));
    clock.advance(by.to_std().unwrap());
    whop_churn::jobs::tick_of(clock.now())
}

/// An HS256 token for `user` in tenant `org`.
pub fn token(user: &str, org: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let now = chrono::Utc::now().timestamp();
    let claims = json!({ "sub": user, "org_id": org, "iat": now, "exp": now + 3600 });
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, HS_SECRET.as_bytes());
    let sig = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}
