//! Which changes write events: a webhook whose transaction fails after its entitlement write
//! writes none; duplicates, stale webhooks and replays that change nothing write none; an
//! entitlement that ends by time alone is deactivated; erasure empties undelivered events and
//! ends the user's history with `user.erased`.

use super::*;

use billing_support::{fixture, ms_in_days, revenuecat, set, token};
use keel::billing::{Override, Provider};
use serde_json::json;

const USER: &str = "events-user-2";

/// A RevenueCat event `name` of "pro" by `user`, `ago_days` old, ending in `days`.
fn rc(name: &str, id: &str, ago_days: i64, days: i64) -> Value {
    let event = fixture("revenuecat", name);
    let event = set(event, "/event/id", json!(id));
    let event = set(event, "/event/app_user_id", json!(USER));
    let event = set(event, "/event/original_app_user_id", json!(USER));
    let event = set(event, "/event/expiration_at_ms", json!(ms_in_days(days)));
    set(
        event,
        "/event/event_timestamp_ms",
        json!(ms_in_days(-ago_days)),
    )
}

/// Makes every insert into the audit log fail: the last write of a webhook's transaction.
async fn break_the_audit_log(db: &TestDb) {
    if db.is_postgres() {
        db.execute(
            "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$
             BEGIN RAISE EXCEPTION 'audit writes refused'; END $$ LANGUAGE plpgsql;
             CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log
             FOR EACH ROW EXECUTE FUNCTION refuse_audit();",
        )
        .await;
    } else {
        db.execute(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log
             BEGIN SELECT RAISE(ABORT, 'audit writes refused'); END;",
        )
        .await;
    }
}

async fn mend_the_audit_log(db: &TestDb) {
    db.execute("DROP TRIGGER refuse_audit ON audit_log; DROP FUNCTION refuse_audit();")
        .await
}

keel_testkit::engine_test!(a_webhook_whose_transaction_rolls_back_writes_no_event);
async fn a_webhook_whose_transaction_rolls_back_writes_no_event(db: TestDb) {
    let (app, _receiver, _dir) = app_and_receiver(db, Arc::new(|_, _| (200, None))).await;
    break_the_audit_log(&app.db).await;
    let purchase = rc("initial_purchase", "evt-rollback", 0, 7);
    assert_eq!(revenuecat(&app, &purchase).await.status, 500);
    assert!(
        stored(&app).await.is_empty(),
        "an event outlived its transaction"
    );
    assert!(!billing_support::active(&app, USER, "pro").await);
    if app.db.is_postgres() {
        mend_the_audit_log(&app.db).await;
    } else {
        app.db.execute("DROP TRIGGER refuse_audit;").await;
    }
    // The provider delivers again: now the change and its one event commit together.
    assert_eq!(revenuecat(&app, &purchase).await.status, 200);
    let events = stored(&app).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].event_type.as_str(), events[0].sequence),
        ("entitlement.activated", 1)
    );
}

keel_testkit::engine_test!(webhooks_that_change_nothing_write_nothing);
async fn webhooks_that_change_nothing_write_nothing(db: TestDb) {
    let (app, _receiver, _dir) = app_and_receiver(db, Arc::new(|_, _| (200, None))).await;
    let purchase = rc("initial_purchase", "evt-first", 1, 7);
    assert_eq!(revenuecat(&app, &purchase).await.status, 200);
    assert_eq!(stored(&app).await.len(), 1);
    // The same event again, a renewal that keeps "pro" active, an older expiration that loses
    // to the newer state, and a replay.
    let duplicate = revenuecat(&app, &purchase).await;
    assert_eq!(duplicate.body["duplicate"], true);
    assert_eq!(
        revenuecat(&app, &rc("renewal", "evt-renew", 0, 30))
            .await
            .status,
        200
    );
    assert_eq!(
        revenuecat(&app, &rc("expiration", "evt-stale", 2, -1))
            .await
            .status,
        200
    );
    app.services()
        .billing
        .replay(Provider::RevenueCat, "evt-first", "test")
        .await
        .unwrap();
    assert!(billing_support::active(&app, USER, "pro").await);
    let events = stored(&app).await;
    assert_eq!(events.len(), 1, "{events:?}");
    // An expiration newer than every state ends it: one deactivation.
    assert_eq!(
        revenuecat(&app, &rc("expiration", "evt-end", -1, -1))
            .await
            .status,
        200
    );
    let types: Vec<String> = stored(&app)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(types, ["entitlement.activated", "entitlement.deactivated"]);
}

keel_testkit::engine_test!(an_entitlement_that_ends_by_time_is_deactivated);
async fn an_entitlement_that_ends_by_time_is_deactivated(db: TestDb) {
    let (app, receiver, _dir) = app_and_receiver(db, Arc::new(|_, _| (200, None))).await;
    let trial = Override {
        entitlement: "trial".into(),
        revoked: false,
        expires_at: Some(app.clock().now() + chrono::Duration::hours(1)),
        reason: "trial".into(),
    };
    app.services()
        .billing
        .set_override(USER, trial, "test")
        .await
        .unwrap();
    let d = dispatcher(&app);
    assert_eq!(d.run_once().await.unwrap().delivered, 1);
    assert_eq!(d.run_once().await.unwrap(), keel::events::Pass::default());
    app.clock().advance(Duration::from_secs(3601));
    let pass = d.run_once().await.unwrap();
    assert_eq!((pass.expired, pass.delivered), (1, 1), "{pass:?}");
    let last = receiver.accepted().pop().unwrap().json();
    assert_eq!(last["type"], "entitlement.deactivated");
    assert_eq!(last["data"], json!({ "entitlement": "trial" }));
    assert_eq!(last["sequence"], 2);
    // Checked once: nothing more is due.
    assert_eq!(d.run_once().await.unwrap(), keel::events::Pass::default());
}

keel_testkit::engine_test!(erasure_empties_undelivered_events_and_ends_the_history);
async fn erasure_empties_undelivered_events_and_ends_the_history(db: TestDb) {
    let (app, receiver, _dir) = app_and_receiver(db, Arc::new(|_, _| (200, None))).await;
    let me = |app: &TestApp| {
        app.client
            .get(app.url("/v1/me"))
            .bearer_auth(token(USER))
            .send()
    };
    assert_eq!(me(&app).await.unwrap().status(), 200);
    drain(&app, 5).await;
    assert_eq!(
        revenuecat(&app, &rc("initial_purchase", "evt-p", 0, 7))
            .await
            .status,
        200
    );
    // The user's export holds their events.
    let export = keel::privacy::export(app.services(), USER).await.unwrap();
    let types: Vec<&str> = export["app_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["user.created", "entitlement.activated"]);
    keel::privacy::request_erasure(app.services(), USER)
        .await
        .unwrap();
    keel::privacy::erase_marked(app.services()).await.unwrap();
    let rows = stored(&app).await;
    // The delivered user.created is gone; the undelivered activation keeps its place, emptied.
    let kept: Vec<(&str, i64, &str)> = rows
        .iter()
        .map(|e| (e.event_type.as_str(), e.sequence, e.data.as_str()))
        .collect();
    assert_eq!(
        kept,
        [("entitlement.activated", 2, "{}"), ("user.erased", 3, "{}")]
    );
    drain(&app, 5).await;
    let bodies: Vec<Value> = receiver.accepted().iter().map(Call::json).collect();
    assert_eq!(bodies[1]["data"], json!({}));
    assert_eq!(bodies[2]["type"], "user.erased");
    // The same id seen again (by a process that had not cached it) continues after the events
    // still kept.
    let principal = keel::auth::Principal {
        user_id: USER.into(),
        tenant_id: None,
        roles: Vec::new(),
        session_id: None,
        expires_at: 0,
        whop_member: false,
    };
    app.services().users.touch(&principal).await.unwrap();
    let again = app.services().db.app_events_of(USER).await.unwrap();
    let last = again.last().unwrap();
    assert_eq!(
        (last.event_type.as_str(), last.sequence),
        ("user.created", 4)
    );
}
