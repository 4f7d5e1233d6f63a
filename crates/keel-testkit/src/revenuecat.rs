//! A fake of RevenueCat's REST API, `GET /v1/subscribers/{app_user_id}`, served over real HTTP
//! in the real response format (get-or-create: 200 for a known subscriber, 201 for a new one).
//!
//! ```ignore
//! let rc = keel_testkit::FakeRevenueCat::start("sk_test").await;
//! rc.set_entitlement("user-1", "pro", "com.app.monthly", Some(Utc::now() + Duration::days(30)));
//! rc.set_will_renew("user-1", "com.app.monthly", false);   // unsubscribe_detected_at = now
//! rc.fail_with(Some(503));                                 // every request answers 503
//! assert_eq!(rc.requests(), 1);
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::fake_server::{self, FakeServer};

/// The subscriber path the fake serves, under [`FakeRevenueCat::url`].
const SUBSCRIBER_PATH: &str = "/v1/subscribers/{app_user_id}";

/// Every purchase in the fake costs this much, in USD.
const PRICE_USD: f64 = 4.99;

/// How long before its expiry a subscription's purchase date lies.
const PERIOD_DAYS: i64 = 30;

/// One stored entitlement: which product grants it, and until when (`None`: lifetime).
struct Entitlement {
    product: String,
    purchase_date: DateTime<Utc>,
    expires: Option<DateTime<Utc>>,
}

/// One stored purchase of a product (a subscription, or a lifetime non-subscription).
struct Purchase {
    purchase_date: DateTime<Utc>,
    expires: Option<DateTime<Utc>>,
    transaction_id: String,
}

/// One customer as RevenueCat knows it.
struct Subscriber {
    first_seen: DateTime<Utc>,
    entitlements: BTreeMap<String, Entitlement>,
    purchases: BTreeMap<String, Purchase>,
}

impl Subscriber {
    fn new(now: DateTime<Utc>) -> Subscriber {
        Subscriber {
            first_seen: now,
            entitlements: BTreeMap::new(),
            purchases: BTreeMap::new(),
        }
    }
}

/// Everything the fake answers from; shared with the server task.
#[derive(Default)]
struct FakeState {
    subscribers: BTreeMap<String, Subscriber>,
    /// `(app_user_id, product)` → when the cancellation was detected; kept apart from the
    /// purchases so `set_will_renew` and `set_entitlement` can come in either order.
    unsubscribed: BTreeMap<(String, String), DateTime<Utc>>,
    fail_with: Option<StatusCode>,
    delay: Duration,
    last_path: Option<String>,
    next_transaction: u64,
}

struct Shared {
    api_key: String,
    state: Mutex<FakeState>,
    requests: AtomicUsize,
}

struct Inner {
    shared: Arc<Shared>,
    /// Dropping it (with the last handle) shuts the server down.
    server: FakeServer,
}

/// A running fake RevenueCat REST API. Cloning gives another handle to the same server; the
/// server stops when the last handle is dropped (or when the test runtime ends).
#[derive(Clone)]
pub struct FakeRevenueCat {
    inner: Arc<Inner>,
}

impl FakeRevenueCat {
    /// Binds `127.0.0.1:0` and serves `GET /v1/subscribers/{app_user_id}` on the current tokio
    /// runtime, accepting only `Authorization: Bearer <api_key>`. Panics if it cannot bind.
    pub async fn start(api_key: &str) -> FakeRevenueCat {
        match Self::try_start(api_key).await {
            Ok(fake) => fake,
            Err(e) => panic!("cannot start the fake RevenueCat: {e}"),
        }
    }

    /// Starts the fake on a free port.
    pub async fn try_start(api_key: &str) -> std::io::Result<FakeRevenueCat> {
        let shared = Arc::new(Shared {
            api_key: api_key.to_owned(),
            state: Mutex::new(FakeState::default()),
            requests: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route(SUBSCRIBER_PATH, get(serve_subscriber))
            .with_state(shared.clone());
        let server = fake_server::start(router).await?;
        Ok(FakeRevenueCat {
            inner: Arc::new(Inner { shared, server }),
        })
    }

    /// The base URL, `http://127.0.0.1:PORT` (no trailing slash); clients append
    /// `/v1/subscribers/{app_user_id}`.
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.server.addr)
    }

    /// Adds or replaces one active-or-expired entitlement of the subscriber, backed by a
    /// subscription to `product` that expires at `expires`, bought 30 days before the earlier of
    /// `expires` and now.
    /// `expires: None` is a lifetime entitlement: `expires_date` null, backed by a
    /// non-subscription purchase of `product` (as RevenueCat reports lifetime purchases).
    pub fn set_entitlement(
        &self,
        app_user_id: &str,
        entitlement: &str,
        product: &str,
        expires: Option<DateTime<Utc>>,
    ) {
        let now = now();
        let purchase_date = match expires {
            Some(at) => at.min(now) - chrono::Duration::days(PERIOD_DAYS),
            None => now,
        };
        let mut state = self.state();
        state.next_transaction += 1;
        let transaction_id = format!("{}", 100_000_000_000_000 + state.next_transaction);
        let subscriber = state
            .subscribers
            .entry(app_user_id.to_owned())
            .or_insert_with(|| Subscriber::new(now));
        subscriber.entitlements.insert(
            entitlement.to_owned(),
            Entitlement {
                product: product.to_owned(),
                purchase_date,
                expires,
            },
        );
        subscriber.purchases.insert(
            product.to_owned(),
            Purchase {
                purchase_date,
                expires,
                transaction_id,
            },
        );
    }

    /// `will_renew: false` sets the subscription's `unsubscribe_detected_at` to now; `true`
    /// sets it back to null. May come before or after [`FakeRevenueCat::set_entitlement`].
    pub fn set_will_renew(&self, app_user_id: &str, product: &str, will_renew: bool) {
        let key = (app_user_id.to_owned(), product.to_owned());
        let mut state = self.state();
        if will_renew {
            state.unsubscribed.remove(&key);
        } else {
            state.unsubscribed.insert(key, now());
        }
    }

    /// Forgets the subscriber entirely: the next request for it answers 201 with no entitlements.
    pub fn clear(&self, app_user_id: &str) {
        let mut state = self.state();
        state.subscribers.remove(app_user_id);
        state
            .unsubscribed
            .retain(|(user, _), _| user != app_user_id);
    }

    /// While `Some(status)`, every request answers that status with a RevenueCat-style error
    /// body `{"code", "message"}` (checked before authentication). Panics on an invalid status.
    pub fn fail_with(&self, status: Option<u16>) {
        let status = status.map(|s| match StatusCode::from_u16(s) {
            Ok(status) => status,
            Err(e) => panic!("invalid HTTP status {s}: {e}"),
        });
        self.state().fail_with = status;
    }

    /// Waits this long before answering each request (`Duration::ZERO`, the default: at once).
    pub fn delay(&self, by: Duration) {
        self.state().delay = by;
    }

    /// How many subscriber requests were received, whatever they were answered.
    pub fn requests(&self) -> usize {
        self.inner.shared.requests.load(Ordering::SeqCst)
    }

    /// The raw (still percent-encoded) path of the last subscriber request.
    pub fn last_path(&self) -> Option<String> {
        self.state().last_path.clone()
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        lock(&self.inner.shared)
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, FakeState> {
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

/// `2026-11-22T10:00:00Z`, the format RevenueCat's REST dates use.
fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn iso_or_null(at: Option<DateTime<Utc>>) -> Value {
    at.map_or(Value::Null, |at| json!(iso(at)))
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

/// `app_user_id` arrives percent-decoded by the `Path` extractor.
async fn serve_subscriber(
    State(shared): State<Arc<Shared>>,
    Path(app_user_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let (delay, fail_with) = {
        let mut state = lock(&shared);
        state.last_path = Some(uri.path().to_owned());
        (state.delay, state.fail_with)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = fail_with {
        let message = status.canonical_reason().unwrap_or("Error");
        return error(status, u32::from(status.as_u16()), message);
    }
    let expected = format!("Bearer {}", shared.api_key);
    let authorized = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|value| value.as_bytes() == expected.as_bytes());
    if !authorized {
        return error(StatusCode::UNAUTHORIZED, 7225, "Invalid API key.");
    }
    let now = now();
    let mut state = lock(&shared);
    let created = !state.subscribers.contains_key(&app_user_id);
    if created {
        state
            .subscribers
            .insert(app_user_id.clone(), Subscriber::new(now));
    }
    let subscriber = render(&state, &app_user_id);
    drop(state);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = json!({
        "request_date": iso(now),
        "request_date_ms": now.timestamp_millis(),
        "subscriber": subscriber,
    });
    (status, Json(body)).into_response()
}

/// The `subscriber` object of §1.6 for a stored subscriber.
fn render(state: &FakeState, app_user_id: &str) -> Value {
    let subscriber = &state.subscribers[app_user_id];
    let mut entitlements = Map::new();
    for (name, e) in &subscriber.entitlements {
        entitlements.insert(
            name.clone(),
            json!({
                "expires_date": iso_or_null(e.expires),
                "grace_period_expires_date": null,
                "product_identifier": e.product,
                "purchase_date": iso(e.purchase_date),
            }),
        );
    }
    let mut subscriptions = Map::new();
    let mut non_subscriptions = Map::new();
    for (product, p) in &subscriber.purchases {
        let price = json!({ "amount": PRICE_USD, "currency": "USD" });
        let Some(expires) = p.expires else {
            let purchase = json!({
                "id": format!("np_{}", p.transaction_id),
                "is_sandbox": false,
                "purchase_date": iso(p.purchase_date),
                "store": "app_store",
                "store_transaction_id": p.transaction_id,
                "display_name": null,
                "price": price,
            });
            non_subscriptions.insert(product.clone(), json!([purchase]));
            continue;
        };
        let unsubscribed = state
            .unsubscribed
            .get(&(app_user_id.to_owned(), product.clone()))
            .copied();
        subscriptions.insert(
            product.clone(),
            json!({
                "expires_date": iso(expires),
                "purchase_date": iso(p.purchase_date),
                "original_purchase_date": iso(p.purchase_date),
                "period_type": "normal",
                "store": "app_store",
                "is_sandbox": false,
                "unsubscribe_detected_at": iso_or_null(unsubscribed),
                "billing_issues_detected_at": null,
                "grace_period_expires_date": null,
                "refunded_at": null,
                "auto_resume_date": null,
                "ownership_type": "PURCHASED",
                "store_transaction_id": p.transaction_id,
                "display_name": null,
                "price": price,
            }),
        );
    }
    json!({
        "original_app_user_id": app_user_id,
        "first_seen": iso(subscriber.first_seen),
        "last_seen": iso(subscriber.first_seen),
        "management_url": null,
        "original_application_version": null,
        "original_purchase_date": null,
        "other_purchases": {},
        "entitlements": entitlements,
        "subscriptions": subscriptions,
        "non_subscriptions": non_subscriptions,
        "subscriber_attributes": {},
    })
}
