//! Each event type reaches the app signed (Keel's verifier and the Python `standardwebhooks`
//! package accept it); a retried event keeps its `webhook-id` and waits for `Retry-After`; the
//! worker delivers on its own; without `APP_EVENTS_URL` nothing is written.

use super::*;

use std::io::Write;
use std::process::{Command, Stdio};

use billing_support::{fixture, ms_in_days, revenuecat, set, token};
use keel::billing::Override;
use serde_json::json;

const USER: &str = "events-user-1";

fn grant(name: &str, revoked: bool) -> Override {
    Override {
        entitlement: name.into(),
        revoked,
        expires_at: None,
        reason: "test".into(),
    }
}

/// A RevenueCat purchase of "pro" by `user`, a week long.
fn purchase(user: &str, id: &str) -> Value {
    let event = fixture("revenuecat", "initial_purchase");
    let event = set(event, "/event/id", json!(id));
    let event = set(event, "/event/app_user_id", json!(user));
    let event = set(event, "/event/original_app_user_id", json!(user));
    let event = set(event, "/event/expiration_at_ms", json!(ms_in_days(7)));
    set(event, "/event/event_timestamp_ms", json!(ms_in_days(0)))
}

keel_testkit::engine_test!(each_type_is_delivered_signed_in_order);
async fn each_type_is_delivered_signed_in_order(db: TestDb) {
    let (app, receiver, _dir) = app_and_receiver(db, Arc::new(|_, _| (200, None))).await;
    let me = app
        .client
        .get(app.url("/v1/me"))
        .bearer_auth(token(USER))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(
        revenuecat(&app, &purchase(USER, "evt-buy-1")).await.status,
        200
    );
    let billing = &app.services().billing;
    billing
        .set_override(USER, grant("beta", false), "test")
        .await
        .unwrap();
    billing
        .set_override(USER, grant("beta", true), "test")
        .await
        .unwrap();
    drain(&app, 20).await;
    keel::privacy::request_erasure(app.services(), USER)
        .await
        .unwrap();
    keel::privacy::erase_marked(app.services()).await.unwrap();
    drain(&app, 20).await;

    let calls = receiver.accepted();
    let seen: Vec<(String, i64, String)> = calls
        .iter()
        .map(|c| {
            let b = c.json();
            let name = b["data"]["entitlement"].as_str().unwrap_or("").to_string();
            (
                b["type"].as_str().unwrap().to_string(),
                b["sequence"].as_i64().unwrap(),
                name,
            )
        })
        .collect();
    let expected = [
        ("user.created", 1, ""),
        ("entitlement.activated", 2, "pro"),
        ("entitlement.activated", 3, "beta"),
        ("entitlement.deactivated", 4, "beta"),
        ("user.erased", 5, ""),
    ];
    let expected: Vec<(String, i64, String)> = expected
        .iter()
        .map(|(t, s, n)| (t.to_string(), *s, n.to_string()))
        .collect();
    assert_eq!(seen, expected);
    for call in &calls {
        assert!(call.verified, "Keel's verifier refused {call:?}");
        let body = call.json();
        assert_eq!(body["id"], call.id.as_str());
        assert!(call.id.starts_with("evt_"), "{}", call.id);
        assert_eq!(body["user_id"], USER);
        assert!(body["created_at"].is_string() && body["data"].is_object());
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["created_at", "data", "id", "sequence", "type", "user_id"]
        );
    }
    let pro = calls[1].json();
    assert_eq!(pro["data"]["source"], "revenuecat");
    assert_eq!(pro["data"]["product_id"], "com.subscription.weekly");
    assert!(pro["data"]["expires_at"].is_string());
    // Delivered rows are kept for the retention period, then pruned.
    assert!(stored(&app).await.iter().all(|e| e.delivered_at.is_some()));
    app.clock()
        .advance(keel::events::DELIVERED_RETENTION + Duration::from_secs(60));
    dispatcher(&app).prune().await;
    assert!(stored(&app).await.is_empty());
}

/// Runs the Python `standardwebhooks` package's verification of `call`; true when it accepts.
fn python_accepts(call: &Call, body: &[u8]) -> bool {
    let script = "import sys\nfrom standardwebhooks import Webhook\n\
        body = sys.stdin.buffer.read()\n\
        headers = {'webhook-id': sys.argv[2], 'webhook-timestamp': sys.argv[3], 'webhook-signature': sys.argv[4]}\n\
        Webhook(sys.argv[1]).verify(body, headers)\n";
    let mut child = Command::new("python3")
        .args([
            "-c",
            script,
            SECRET,
            &call.id,
            &call.timestamp,
            &call.signature,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    child.wait().unwrap().success()
}

keel_testkit::engine_test!(python_standardwebhooks_verifies_an_event);
async fn python_standardwebhooks_verifies_an_event(db: TestDb) {
    if !python_webhooks() {
        return;
    }
    let (app, receiver, _dir) = app_and_receiver(db, Arc::new(|_, _| (200, None))).await;
    let billing = &app.services().billing;
    billing
        .set_override(USER, grant("pro", false), "test")
        .await
        .unwrap();
    drain(&app, 5).await;
    let call = receiver.accepted().pop().expect("one delivery");
    assert!(
        python_accepts(&call, &call.body),
        "standardwebhooks refused {call:?}"
    );
    let mut tampered = call.body.clone();
    let last = tampered.len() - 2;
    tampered[last] ^= 1;
    assert!(!python_accepts(&call, &tampered), "a tampered body passed");
    let stale = Call {
        timestamp: (call.timestamp.parse::<i64>().unwrap() - 3600).to_string(),
        ..call.clone()
    };
    assert!(
        !python_accepts(&stale, &call.body),
        "a stale timestamp passed"
    );
}

keel_testkit::engine_test!(retries_keep_the_webhook_id_and_honour_retry_after);
async fn retries_keep_the_webhook_id_and_honour_retry_after(db: TestDb) {
    let plan: Plan = Arc::new(|n, _| match n {
        0 => (503, Some("120")),
        1 => (500, None),
        _ => (200, None),
    });
    let (app, receiver, _dir) = app_and_receiver(db, plan).await;
    let billing = &app.services().billing;
    billing
        .set_override(USER, grant("pro", false), "test")
        .await
        .unwrap();
    let d = dispatcher(&app);
    assert_eq!(d.run_once().await.unwrap().retried, 1);
    let row = stored(&app).await.remove(0);
    assert_eq!(row.attempts, 1);
    assert!(
        row.last_error.as_deref().unwrap().starts_with("HTTP 503"),
        "{row:?}"
    );
    // Not before the 120 s the app asked for.
    assert_eq!(d.run_once().await.unwrap().attempted(), 0);
    app.clock().advance(Duration::from_secs(115));
    assert_eq!(d.run_once().await.unwrap().attempted(), 0);
    app.clock().advance(Duration::from_secs(6));
    assert_eq!(d.run_once().await.unwrap().retried, 1);
    // No Retry-After: the backoff of a second attempt, 2 s.
    app.clock().advance(Duration::from_secs(1));
    assert_eq!(d.run_once().await.unwrap().attempted(), 0);
    app.clock().advance(Duration::from_secs(2));
    assert_eq!(d.run_once().await.unwrap().delivered, 1);
    let calls = receiver.calls();
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|c| c.id == calls[0].id && c.verified));
    assert_eq!(calls[2].json()["id"], calls[0].id.as_str());
    let row = stored(&app).await.remove(0);
    assert!(row.delivered_at.is_some() && row.last_error.is_none());
    assert_eq!(row.attempts, 3);
}

keel_testkit::engine_test!(an_event_claimed_by_a_dead_dispatcher_goes_again_after_its_lease);
async fn an_event_claimed_by_a_dead_dispatcher_goes_again_after_its_lease(db: TestDb) {
    let (app, receiver, _dir) = app_and_receiver(db, Arc::new(|_, _| (200, None))).await;
    let billing = &app.services().billing;
    billing
        .set_override(USER, grant("pro", false), "test")
        .await
        .unwrap();
    // A process claims the event, then dies before it records an answer.
    let now = app.clock().now();
    let lease = chrono::Duration::from_std(keel::events::LEASE).unwrap();
    let db = &app.services().db;
    let claimed = db.claim_app_events(now, now + lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let d = dispatcher(&app);
    assert_eq!(
        d.run_once().await.unwrap().attempted(),
        0,
        "the lease holds"
    );
    app.clock()
        .advance(keel::events::LEASE + Duration::from_secs(1));
    assert_eq!(d.run_once().await.unwrap().delivered, 1);
    let calls = receiver.accepted();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, claimed[0].id);
    assert_eq!(stored(&app).await[0].attempts, 2);
}

keel_testkit::engine_test!(the_worker_delivers_on_its_own);
async fn the_worker_delivers_on_its_own(db: TestDb) {
    let receiver = Receiver::start(Arc::new(|_, _| (200, None))).await;
    let (builder, _dir) = app(db, &receiver.url);
    let app = builder.env("WORKER_ENABLED", "true").spawn().await;
    receiver.follow(app.clock());
    assert_eq!(
        revenuecat(&app, &purchase(USER, "evt-buy-2")).await.status,
        200
    );
    let calls = keel_testkit::eventually("the event arrives", Duration::from_secs(30), || async {
        let calls = receiver.accepted();
        (!calls.is_empty()).then_some(calls)
    })
    .await;
    assert_eq!(calls[0].json()["type"], "entitlement.activated");
    assert!(calls[0].verified);
}

keel_testkit::engine_test!(nothing_is_written_without_an_events_url);
async fn nothing_is_written_without_an_events_url(db: TestDb) {
    let (dir, path) = billing_support::config_dir();
    let app = billing_support::app(db, &path).spawn().await;
    let me = app
        .client
        .get(app.url("/v1/me"))
        .bearer_auth(token(USER))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(
        revenuecat(&app, &purchase(USER, "evt-buy-3")).await.status,
        200
    );
    let billing = &app.services().billing;
    billing
        .set_override(USER, grant("beta", false), "test")
        .await
        .unwrap();
    keel::privacy::request_erasure(app.services(), USER)
        .await
        .unwrap();
    keel::privacy::erase_marked(app.services()).await.unwrap();
    assert!(Dispatcher::from_services(app.services()).is_none());
    assert!(stored(&app).await.is_empty());
    assert_eq!(app.services().db.app_events_backlog().await.unwrap(), 0);
    drop(dir);
}
