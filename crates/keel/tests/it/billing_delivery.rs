//! Webhook delivery end to end: any order and any number of deliveries end in the same
//! entitlements, concurrent duplicates are stored once, authentication refuses everything it
//! should without storing it, payloads are sealed at rest and re-sealed after a key rotation.

use crate::billing_support;

use std::time::{Duration, Instant};

use billing_support::*;
use keel::billing::Provider;
use keel::crypto::Sealer;
use keel::store::Db;
use keel_testkit::{TestApp, TestAppBuilder, TestDb};
use reqwest::StatusCode;
use serde_json::{json, Value};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// Random cases per engine in the order-and-duplicates property.
const CASES: u64 = 8;
const FRESH: &str = r#"{"received":true,"duplicate":false}"#;
const AGAIN: &str = r#"{"received":true,"duplicate":true}"#;
const EVENTS: &str = "SELECT count(*) FROM billing_events";
const AUDIT: &str = "SELECT count(*) FROM audit_log WHERE action = 'billing.event'";

/// A sealer over `keys` (a `DATA_ENCRYPTION_KEYS` value), independent of any app.
fn sealer(keys: &str) -> Sealer {
    let builder = TestApp::builder(TestDb::sqlite()).env("DATA_ENCRYPTION_KEYS", keys);
    Sealer::new(&builder.settings().data_keys).expect("valid keys")
}

/// The aad `keel::billing::ingest::payload_aad` binds a payload to (a private module).
fn aad(event_id: &str) -> Vec<u8> {
    format!("billing_events:revenuecat:{event_id}").into_bytes()
}

/// A second handle on the app's database, to read what it stored.
fn inspect(builder: &TestAppBuilder) -> Db {
    Db::connect_lazy(&builder.settings().database).expect("inspection pool")
}

/// The sealed payload of a stored RevenueCat event.
async fn sealed(db: &Db, event_id: &str) -> Vec<u8> {
    let row = db.billing_event(Provider::RevenueCat, event_id).await;
    let (_, payload) = row.expect("read event").expect("event stored");
    payload.expect("payload stored")
}

/// SQL counting the event `id` when its `key_id` is `kid`.
fn under(id: &str, kid: &str) -> String {
    format!("SELECT count(*) FROM billing_events WHERE event_id = '{id}' AND key_id = '{kid}'")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A POST with one optional header: status, content type and body text.
async fn post(app: &TestApp, path: &str, header: Option<(&str, &str)>, body: &[u8]) -> Reply {
    let mut request = reqwest::Client::new().post(app.url(path));
    request = request.header("content-type", "application/json");
    request = request.body(body.to_vec());
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let content_type = response.headers().get("content-type").cloned();
    let content_type = content_type.and_then(|v| v.to_str().ok().map(String::from));
    let text = response.text().await.expect("body");
    (status, content_type.unwrap_or_default(), text)
}

type Reply = (StatusCode, String, String);

/// A RevenueCat delivery with the right authorization.
async fn rc_post(app: &TestApp, body: &[u8]) -> Reply {
    let auth = format!("Bearer {RC_SECRET}");
    let header = Some(("authorization", auth.as_str()));
    post(app, "/webhooks/revenuecat", header, body).await
}

/// A Stripe delivery signed now with the current secret.
async fn st_post(app: &TestApp, body: &[u8]) -> Reply {
    let signature = stripe_signature(STRIPE_SECRET, chrono::Utc::now().timestamp(), body);
    let header = Some(("stripe-signature", signature.as_str()));
    post(app, "/webhooks/stripe", header, body).await
}

/// Checks a problem answer (never a 5xx) and returns its body.
fn problem(reply: &Reply, status: u16, what: &str) -> Value {
    let (got, content_type, text) = reply;
    assert!(got.as_u16() < 500, "{what}: {got} {text}");
    assert_eq!(got.as_u16(), status, "{what}: {text}");
    let is_problem = content_type.starts_with("application/problem+json");
    assert!(is_problem, "{what}: content-type {content_type}");
    json(text)
}

/// Whether a 400 problem names `field` in its `errors`.
fn names(problem: &Value, field: &str) -> bool {
    let errors = problem["errors"].as_array().cloned().unwrap_or_default();
    errors.iter().any(|e| e["field"] == json!(field))
}

/// The RevenueCat history of `user-p`: (event id, type, hours after the first event,
/// transaction, expiry in hours from now).
const RC_HISTORY: [(&str, &str, i64, &str, i64); 10] = [
    ("rc-a1", "INITIAL_PURCHASE", 0, "txA", -72),
    ("rc-b1", "INITIAL_PURCHASE", 1, "txB", 7 * 24),
    ("rc-a2", "BILLING_ISSUE", 2, "txA", -72),
    ("rc-a3", "RENEWAL", 3, "txA", 20 * 24),
    ("rc-a4", "CANCELLATION", 4, "txA", 20 * 24),
    ("rc-a5", "UNCANCELLATION", 5, "txA", 20 * 24),
    ("rc-b2", "EXPIRATION", 6, "txB", -1),
    ("rc-a6", "RENEWAL", 7, "txA", 25 * 24),
    ("rc-c1", "INITIAL_PURCHASE", 8, "txC", -48),
    ("rc-c2", "BILLING_ISSUE", 9, "txC", -48),
];

/// The Stripe history of `user-s` (customer `cus_prop`) after its checkout, one event a minute:
/// (event id, type, subscription, status, period end in days from now). `sub_old` is deleted
/// and then gets a late update, which must not bring it back.
const STRIPE_HISTORY: [(&str, &str, &str, &str, i64); 7] = [
    ("st-2", "subscription.created", "sub_prop", "active", 20),
    ("st-3", "subscription.updated", "sub_prop", "past_due", -1),
    ("st-4", "subscription.updated", "sub_prop", "active", 29),
    ("st-5", "invoice.paid", "sub_prop", "", 31),
    ("st-6", "subscription.created", "sub_old", "active", 60),
    ("st-7", "subscription.deleted", "sub_old", "canceled", 60),
    ("st-8", "subscription.updated", "sub_old", "active", 60),
];

/// One event to deliver: whether it is Stripe's, and its exact body.
#[derive(Clone)]
struct Delivery(bool, String);

impl Delivery {
    /// Sends it to `base` (signed now); the status and the answer.
    async fn send(self, base: String) -> (StatusCode, Value) {
        let (path, header, value) = if self.0 {
            let now = chrono::Utc::now().timestamp();
            let sig = stripe_signature(STRIPE_SECRET, now, self.1.as_bytes());
            ("/webhooks/stripe", "stripe-signature", sig)
        } else {
            let auth = format!("Bearer {RC_SECRET}");
            ("/webhooks/revenuecat", "authorization", auth)
        };
        let url = format!("{base}{path}");
        let request = reqwest::Client::new().post(url).header(header, value);
        let request = request.header("content-type", "application/json");
        let response = request.body(self.1).send().await.expect("request");
        let status = response.status();
        (status, json(&response.text().await.expect("body")))
    }
}

/// A RevenueCat event of `user-p` about transaction `tx` (A grants `pro` through the product
/// mapping; B and C name `extra` and `support`), at `at`, expiring at `exp` (epoch ms).
fn rc_event(id: &str, kind: &str, at: i64, tx: &str, exp: i64) -> Value {
    let (product, ents) = match tx {
        "txA" => ("com.subscription.monthly", Value::Null),
        "txB" => ("com.subscription.weekly", json!(["extra"])),
        _ => ("com.subscription.weekly", json!(["support"])),
    };
    json!({ "api_version": "1.0", "event": {
        "id": id, "type": kind, "event_timestamp_ms": at, "app_user_id": "user-p",
        "original_app_user_id": "$RCAnonymousID:prop", "aliases": ["$RCAnonymousID:prop"],
        "product_id": product, "entitlement_ids": ents, "expiration_at_ms": exp,
        "store": "APP_STORE", "environment": "PRODUCTION",
        "transaction_id": format!("{tx}-{at}"), "original_transaction_id": tx,
    }})
}

/// Both histories, with strictly increasing event times; expirations are relative to now so the
/// final state mixes active, renewing, expired and in-grace entitlements.
fn history() -> Vec<Delivery> {
    let now = chrono::Utc::now().timestamp_millis();
    let t0 = now - 10 * DAY_MS;
    let mut out = Vec::new();
    for (id, kind, at, tx, exp) in RC_HISTORY {
        let mut body = rc_event(id, kind, t0 + at * HOUR_MS, tx, now + exp * HOUR_MS);
        let (event, grace) = (&mut body["event"], "grace_period_expiration_at_ms");
        match (kind, tx) {
            ("BILLING_ISSUE", "txA") => event[grace] = json!(now - DAY_MS),
            ("BILLING_ISSUE", _) => event[grace] = json!(now + DAY_MS),
            ("CANCELLATION", _) => event["cancel_reason"] = json!("UNSUBSCRIBE"),
            _ => {}
        }
        out.push(Delivery(false, body.to_string()));
    }
    let t0 = now / 1000 - 86_400;
    let checkout = json!({ "id": "st-1", "type": "checkout.session.completed",
        "created": t0, "livemode": true, "data": { "object": { "id": "cs_prop",
            "client_reference_id": "user-s", "customer": "cus_prop", "subscription": "sub_prop" } } });
    out.push(Delivery(true, checkout.to_string()));
    for (i, (id, kind, sub, status, days)) in (1..).zip(STRIPE_HISTORY) {
        let end = now / 1000 + days * 86_400;
        let invoice = kind == "invoice.paid";
        let object = if invoice {
            json!({ "id": "in_prop", "object": "invoice", "customer": "cus_prop",
                "parent": { "subscription_details": { "subscription": sub } },
                "lines": { "data": [{ "period": { "start": t0, "end": end },
                    "pricing": { "price_details": { "price": "price_monthly", "product": "prod_premium" } } }] } })
        } else {
            json!({ "id": sub, "object": "subscription", "customer": "cus_prop", "status": status,
                "cancel_at_period_end": false, "items": { "data": [{ "id": format!("si_{sub}"),
                    "current_period_end": end, "price": { "id": "price_monthly", "product": "prod_premium" } }] } })
        };
        let kind = kind.replace("subscription.", "customer.subscription.");
        let event = json!({ "id": id, "object": "event", "type": kind, "created": t0 + 60 * i,
            "livemode": true, "data": { "object": object } });
        out.push(Delivery(true, event.to_string()));
    }
    out
}

async fn state(app: &TestApp) -> Value {
    let p = entitlements(app, "user-p").await;
    let s = entitlements(app, "user-s").await;
    json!({ "user-p": p, "user-s": s })
}

async fn order_and_duplicates(db: TestDb) {
    let (_dir, config) = config_dir();
    let is_postgres = db.is_postgres();
    let events = history();
    let reference_app = app(db, &config).spawn().await;
    for d in &events {
        let (status, body) = d.clone().send(reference_app.base_url.clone()).await;
        let fresh = status == StatusCode::OK && body == json(FRESH);
        assert!(fresh, "{}: {status} {body}", d.1);
    }
    let reference = state(&reference_app).await;
    reference_app.shutdown().await.unwrap();
    // Not trivial: each transaction's last state shows.
    let (p, s) = (&reference["user-p"], &reference["user-s"]);
    let facts = [
        p["pro"]["will_renew"] == json!(true) && p["pro"]["in_grace_period"] == json!(false),
        p["extra"]["active"] == json!(false) && p["support"]["in_grace_period"] == json!(true),
        s["premium"]["active"] == json!(true) && s["premium"]["source"] == json!("stripe"),
    ];
    assert_eq!(facts, [true; 3], "{reference}");
    let base = match std::env::var("KEEL_BILLING_SEED") {
        Ok(v) => v.parse().expect("KEEL_BILLING_SEED is a u64"),
        Err(_) => chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64,
    };
    eprintln!("order_and_duplicates: base seed {base} (KEEL_BILLING_SEED replays it)");
    for case in 0..CASES {
        let step = case.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let seed = base.wrapping_add(step).max(1);
        // xorshift64: small, seeded, reproducible.
        let mut x = seed;
        let mut below = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let mut plan: Vec<usize> = Vec::new();
        for i in 0..events.len() {
            plan.extend(std::iter::repeat_n(i, 1 + below(3)));
        }
        for i in (1..plan.len()).rev() {
            plan.swap(i, below(i + 1));
        }
        // Odd cases deliver in concurrent bursts of up to four; even cases one at a time,
        // sometimes reading the entitlements in between (filling the cache).
        let burst = if case % 2 == 1 { 4 } else { 1 };
        let why = format!("seed {seed} (KEEL_BILLING_SEED={base}, case {case}), plan {plan:?}");
        let db = match is_postgres {
            true => TestDb::postgres().await.expect("postgres is configured"),
            false => TestDb::sqlite(),
        };
        let app = app(db, &config).spawn().await;
        let mut first = 0;
        let mut rest = &plan[..];
        while !rest.is_empty() {
            let n = (1 + below(burst)).min(rest.len());
            let mut tasks = Vec::new();
            for &i in &rest[..n] {
                tasks.push(tokio::spawn(events[i].clone().send(app.base_url.clone())));
            }
            for task in tasks {
                let (status, body) = task.await.expect("delivery task");
                assert_eq!(status, StatusCode::OK, "{why}: {body}");
                first += usize::from(body == json(FRESH));
            }
            rest = &rest[n..];
            if burst == 1 && below(3) == 0 {
                state(&app).await;
            }
        }
        assert_eq!(first, events.len(), "{why}: one first delivery per event");
        assert_eq!(state(&app).await, reference, "{why}");
        assert_eq!(app.db.scalar(EVENTS).await, events.len() as i64, "{why}");
        assert_eq!(app.db.scalar(AUDIT).await, events.len() as i64, "{why}");
        app.shutdown().await.unwrap();
    }
}

// Concurrent duplicates
async fn concurrent_duplicates(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let event = fixture("revenuecat", "initial_purchase");
    let event = set(event, "/event/expiration_at_ms", json!(ms_in_days(7)));
    let id = event["event"]["id"].as_str().unwrap().to_string();
    let delivery = Delivery(false, event.to_string());
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (delivery, base, barrier) = (delivery.clone(), app.base_url.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            delivery.send(base).await
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        let (status, body) = task.await.expect("task");
        assert_eq!(status, StatusCode::OK, "{body}");
        answers.push(body);
    }
    let fresh = answers.iter().filter(|a| **a == json(FRESH)).count();
    let again = answers.iter().filter(|a| **a == json(AGAIN)).count();
    assert_eq!((fresh, again), (1, 19), "{answers:?}");
    let rows = format!("SELECT count(*) FROM billing_events WHERE event_id = '{id}'");
    assert_eq!(app.db.scalar(&rows).await, 1);
    assert_eq!(app.db.scalar(EVENTS).await, 1);
    let by_revenuecat = format!("{AUDIT} AND actor = 'revenuecat'");
    assert_eq!(app.db.scalar(&by_revenuecat).await, 1);
    assert_eq!(app.db.scalar(AUDIT).await, 1);
    app.shutdown().await.unwrap();
}

// Authentication and validation

/// A 401 webhook problem that quotes neither `secret` nor any of `needles` from the payload.
fn unauthorized(reply: &Reply, what: &str, secret: &str, needles: &[&str]) {
    let p = problem(reply, 401, what);
    let kind = "https://keel.dev/problems/webhook-unauthorized";
    assert_eq!(p["type"], json!(kind), "{what}: {p}");
    let text = reply.2.to_lowercase();
    for quoted in needles.iter().chain([&secret]) {
        let quoted = quoted.to_lowercase();
        assert!(!text.contains(&quoted), "{what} quotes {quoted}: {text}");
    }
}

async fn authentication_matrix(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let event = fixture("revenuecat", "initial_purchase");
    let event = set(event, "/event/id", json!("rc-auth-probe"));
    let rc_event = set(event, "/event/app_user_id", json!("user-auth-probe")).to_string();
    let rc_body = rc_event.as_bytes();
    let rc_needles = ["rc-auth-probe", "user-auth-probe", "firstlast@gmail.com"];
    let upper = format!("Bearer {}", RC_SECRET.to_uppercase());
    let (extra, basic) = (format!("Bearer {RC_SECRET}x"), format!("Basic {RC_SECRET}"));
    let cases: [(&str, Option<&str>); 6] = [
        ("no header", None),
        ("wrong secret", Some("Bearer wrong-secret")),
        ("other case", Some(&upper)),
        ("extra char", Some(&extra)),
        ("basic", Some(&basic)),
        ("empty", Some("")),
    ];
    for (what, value) in cases {
        let header = value.map(|v| ("authorization", v));
        let reply = post(&app, "/webhooks/revenuecat", header, rc_body).await;
        unauthorized(&reply, what, RC_SECRET, &rc_needles);
    }
    let st_event = json!({ "id": "evt_auth_probe", "object": "event", "livemode": true,
        "type": "checkout.session.completed", "created": chrono::Utc::now().timestamp(),
        "data": { "object": { "id": "cs_auth", "client_reference_id": "user-auth-probe",
            "customer": "cus_auth_probe" } } });
    let st_body = st_event.to_string().into_bytes();
    let st_needles = ["evt_auth_probe", "cus_auth_probe", OLD_STRIPE_SECRET];
    // Just after a second starts, so `now` is still the server's second when it checks.
    let ms = u64::from(chrono::Utc::now().timestamp_subsec_millis().min(999));
    if ms > 100 {
        tokio::time::sleep(Duration::from_millis(1005 - ms)).await;
    }
    let now = chrono::Utc::now().timestamp();
    let v0 = keel::billing::stripe::sign(STRIPE_SECRET, now, &st_body);
    let sig = |key: &str, dt: i64, body: &[u8]| Some(stripe_signature(key, now + dt, body));
    let stripe_cases = [
        ("no header", None),
        ("wrong secret", sig("whsec_wrong", 0, &st_body)),
        ("only v0", Some(format!("t={now},v0={v0}"))),
        ("301 s old", sig(STRIPE_SECRET, -301, &st_body)),
        ("301 s ahead", sig(STRIPE_SECRET, 301, &st_body)),
        ("other body", sig(STRIPE_SECRET, 0, b"{}")),
    ];
    for (what, value) in &stripe_cases {
        let header = value.as_deref().map(|v| ("stripe-signature", v));
        let reply = post(&app, "/webhooks/stripe", header, &st_body).await;
        unauthorized(&reply, what, STRIPE_SECRET, &st_needles);
    }
    // Authenticated but unreadable or incomplete: 400 naming the field.
    problem(&rc_post(&app, b"{not json").await, 400, "rc json");
    let no_event = br#"{"api_version":"1.0"}"#;
    let p = problem(&rc_post(&app, no_event).await, 400, "no event");
    assert!(names(&p, "event"), "{p}");
    let no_id = br#"{"event":{"type":"RENEWAL","event_timestamp_ms":1}}"#;
    let p = problem(&rc_post(&app, no_id).await, 400, "no event.id");
    assert!(names(&p, "event.id"), "{p}");
    problem(&st_post(&app, b"{not json").await, 400, "stripe: not json");
    let no_id = br#"{"type":"checkout.session.completed","created":1,"data":{"object":{}}}"#;
    let p = problem(&st_post(&app, no_id).await, 400, "stripe: no id");
    assert!(names(&p, "id"), "{p}");
    // Over the 1 MiB body limit, authenticated.
    let mut big = br#"{"event":{"id":""#.to_vec();
    big.resize(1024 * 1024 + 1, b'a');
    problem(&rc_post(&app, &big).await, 413, "revenuecat: oversized");
    problem(&st_post(&app, &big).await, 413, "stripe: oversized");
    assert_eq!(app.db.scalar(EVENTS).await, 0, "refused but stored");

    // Accepted: the bare secret, `Bearer` + secret, the previous Stripe secret, two v1 values.
    let answer = revenuecat_raw(&app, Some(RC_SECRET), rc_body).await;
    assert_eq!(answer.body, json(FRESH));
    let answer = revenuecat_raw(&app, Some(&format!("Bearer {RC_SECRET}")), rc_body).await;
    assert_eq!(answer.body, json(AGAIN));
    let now = chrono::Utc::now().timestamp();
    let previous = stripe_signature(OLD_STRIPE_SECRET, now, &st_body);
    let answer = stripe_raw(&app, Some(&previous), &st_body).await;
    assert_eq!(answer.body, json(FRESH));
    let second = set(st_event, "/id", json!("evt_auth_probe_2")).to_string();
    let good = keel::billing::stripe::sign(STRIPE_SECRET, now, second.as_bytes());
    let two = format!("t={now},v1={},v1={good}", "0".repeat(64));
    let answer = stripe_raw(&app, Some(&two), second.as_bytes()).await;
    assert_eq!(answer.body, json(FRESH));
    assert_eq!(app.db.scalar(EVENTS).await, 3);
    app.shutdown().await.unwrap();
}

// Sealing and key rotation
async fn sealed_at_rest(db: TestDb) {
    let (_dir, config) = config_dir();
    let builder = app(db, &config);
    let store = inspect(&builder);
    let app = builder.spawn().await;
    let event = fixture("revenuecat", "initial_purchase");
    let id = event["event"]["id"].as_str().unwrap().to_string();
    assert_eq!(revenuecat(&app, &event).await.body, json(FRESH));
    let row = store.billing_event(Provider::RevenueCat, &id).await;
    let (summary, payload) = row.unwrap().expect("stored");
    let payload = payload.expect("payload");
    let clear = "1234567890 com.subscription.weekly INITIAL_PURCHASE firstlast@gmail.com";
    for text in clear.split(' ') {
        let found = payload.windows(text.len()).any(|w| w == text.as_bytes());
        assert!(!found, "the payload holds {text} in clear");
    }
    assert_eq!(app.db.scalar(&under(&id, "k1")).await, 1, "key_id is k1");
    assert_eq!(Sealer::key_id_of(&payload), Some("k1"));
    assert_eq!(summary.event_type, "INITIAL_PURCHASE");
    assert_eq!(summary.user_id.as_deref(), Some("1234567890"));
    let weekly = Some("com.subscription.weekly");
    assert_eq!(summary.product_id.as_deref(), weekly);
    let opened = sealer(KEY_1).open(&payload, &aad(&id)).expect("opens");
    let delivered = event.to_string().into_bytes();
    assert_eq!(opened, delivered, "exactly the delivered body");
    // Bound to its row: under another event's aad it does not open.
    assert!(sealer(KEY_1).open(&payload, &aad("other")).is_err());
    app.shutdown().await.unwrap();
    store.close().await;
}

async fn key_rotation(db: TestDb) {
    let (_dir, config) = config_dir();
    let builder = app(db, &config);
    let store = inspect(&builder);
    let mut first = builder.spawn().await;
    let old = fixture("revenuecat", "initial_purchase");
    let old = set(old, "/event/id", json!("rot-old"));
    assert_eq!(revenuecat(&first, &old).await.body, json(FRESH));
    assert_eq!(first.db.scalar(&under("rot-old", "k1")).await, 1);
    // Keep the database past the first app.
    let db = std::mem::replace(&mut first.db, TestDb::sqlite());
    first.shutdown().await.unwrap();

    let rotated = format!("{KEY_2},{KEY_1}");
    let builder = app(db, &config).env("DATA_ENCRYPTION_KEYS", &rotated);
    let second = builder.spawn().await;
    let both = sealer(&rotated);
    let old_body = old.to_string().into_bytes();
    let payload = sealed(&store, "rot-old").await;
    let old_aad = aad("rot-old");
    let opened = both.open(&payload, &old_aad).expect("opens");
    assert_eq!(opened, old_body, "the old event opens after the rotation");
    // The role-all app enqueued `crypto.reseal` at start.
    let started = Instant::now();
    while second.db.scalar(&under("rot-old", "k2")).await != 1 {
        let late = started.elapsed() > Duration::from_secs(15);
        assert!(!late, "not re-sealed within 15 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let payload = sealed(&store, "rot-old").await;
    assert_eq!(Sealer::key_id_of(&payload), Some("k2"));
    assert_eq!(both.open(&payload, &old_aad).expect("opens"), old_body);
    let k2 = sealer(KEY_2);
    let alone = k2.open(&payload, &old_aad);
    assert_eq!(alone.expect("k2 alone opens it"), old_body);
    let new = set(old, "/event/id", json!("rot-new"));
    assert_eq!(revenuecat(&second, &new).await.body, json(FRESH));
    assert_eq!(second.db.scalar(&under("rot-new", "k2")).await, 1);
    let payload = sealed(&store, "rot-new").await;
    let opened = k2.open(&payload, &aad("rot-new")).expect("opens");
    assert_eq!(opened, new.to_string().into_bytes());
    second.shutdown().await.unwrap();
    store.close().await;
}

// A provider that is not enabled
async fn disabled_provider(db: TestDb) {
    let builder = TestApp::builder(db).env("AUTH_HS256_SECRET", HS_SECRET);
    let builder = builder.env("DATA_ENCRYPTION_KEYS", KEY_1);
    let builder = builder.env("REVENUECAT_WEBHOOK_SECRET", RC_SECRET);
    let app = builder.spawn().await;
    let body = json!({ "id": "evt_disabled", "type": "checkout.session.completed", "livemode": true,
        "created": chrono::Utc::now().timestamp(),
        "data": { "object": { "client_reference_id": "u1", "customer": "cus_disabled" } } });
    let body = body.to_string().into_bytes();
    problem(&st_post(&app, &body).await, 404, "stripe disabled, signed");
    let unsigned = post(&app, "/webhooks/stripe", None, &body).await;
    problem(&unsigned, 404, "stripe disabled, unsigned");
    assert_eq!(app.db.scalar(EVENTS).await, 0);
    // The enabled provider is served.
    let test_event = fixture("revenuecat", "test");
    assert_eq!(revenuecat(&app, &test_event).await.body, json(FRESH));
    let stripe_rows = format!("{EVENTS} WHERE provider = 'stripe'");
    assert_eq!(app.db.scalar(&stripe_rows).await, 0);
    app.shutdown().await.unwrap();
}

/// The newest state decides the grace period: once the payment recovered (RevenueCat RENEWAL
/// after BILLING_ISSUE, Stripe `active` after `past_due`) the old grace end no longer applies.
async fn recovered_payment_ends_the_grace_period(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let now = chrono::Utc::now().timestamp_millis();
    let day = |n: i64| now + n * DAY_MS;
    // A 25-day grace (Play allows up to 30), a recovered weekly renewal, then a cancellation:
    // access ends with the renewed period, 12 days ago.
    let mut issue = rc_event("g-1", "BILLING_ISSUE", day(-20), "txA", day(-20));
    issue["event"]["grace_period_expiration_at_ms"] = json!(day(5));
    let renewal = rc_event("g-2", "RENEWAL", day(-19), "txA", day(-12));
    let cancel = rc_event("g-3", "CANCELLATION", day(-15), "txA", day(-12));
    let rc = [issue, renewal, cancel].map(|e| Delivery(false, e.to_string()));
    // Stripe: the checkout, `past_due` (in grace), then `active` again.
    let stripe = history();
    let stripe = [10, 12, 13].map(|i| stripe[i].clone());
    for d in rc.into_iter().chain(stripe) {
        assert_eq!(d.send(app.base_url.clone()).await.1, json(FRESH));
    }
    let state = state(&app).await;
    let (pro, premium) = (&state["user-p"]["pro"], &state["user-s"]["premium"]);
    assert_eq!(pro["active"], json!(false), "{state}");
    assert_eq!(premium["active"], json!(true), "{state}");
    assert_eq!(premium["in_grace_period"], json!(false), "{state}");
    app.shutdown().await.unwrap();
}

keel_testkit::engine_test!(a_recovered_payment_ends_the_grace_period);
async fn a_recovered_payment_ends_the_grace_period(db: TestDb) {
    recovered_payment_ends_the_grace_period(db).await;
}

keel_testkit::engine_test!(any_order_and_duplicates_end_in_the_same_entitlements);
async fn any_order_and_duplicates_end_in_the_same_entitlements(db: TestDb) {
    order_and_duplicates(db).await;
}
keel_testkit::engine_test!(concurrent_duplicates_are_stored_once);
async fn concurrent_duplicates_are_stored_once(db: TestDb) {
    concurrent_duplicates(db).await;
}
keel_testkit::engine_test!(unauthenticated_and_invalid_deliveries_store_nothing);
async fn unauthenticated_and_invalid_deliveries_store_nothing(db: TestDb) {
    authentication_matrix(db).await;
}
keel_testkit::engine_test!(payloads_are_sealed_at_rest);
async fn payloads_are_sealed_at_rest(db: TestDb) {
    sealed_at_rest(db).await;
}
keel_testkit::engine_test!(rotation_reseals_payloads_under_the_newest_key);
async fn rotation_reseals_payloads_under_the_newest_key(db: TestDb) {
    key_rotation(db).await;
}
keel_testkit::engine_test!(a_provider_not_enabled_is_not_found);
async fn a_provider_not_enabled_is_not_found(db: TestDb) {
    disabled_provider(db).await;
}
