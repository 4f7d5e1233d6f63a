//! One history of RevenueCat events delivered to an app on SQLite and to one on Postgres leaves
//! the same rows. Postgres stores and applies the common event in one fused statement
//! (`keel_store::billing_ingest`) where SQLite takes the step-by-step path, so a fused statement
//! that means something else than the steps shows here as a difference.

use super::*;

use keel::store::billing::EventFilter;

const A: &str = "paths-a";
const B: &str = "paths-b";
const C: &str = "paths-c";
const ANON: &str = "$RCAnonymousID:paths";
const ALIAS: &str = "paths-a-alias";

/// The history: purchases with aliases, a repeated delivery, a transfer and a renewal dated before
/// it (its owner follows the transfer), a purchase linking an anonymous id and a renewal naming only
/// that id, a billing issue, a cancellation, and events that change nothing.
fn history() -> Vec<Value> {
    let in_7 = ms_in_days(7);
    let in_30 = ms_in_days(30);
    let purchase_a = set(
        rc_for(rc("initial_purchase", 60, Some(in_7)), A),
        "/event/aliases",
        json!([A, ALIAS]),
    );
    let transfer = set(
        set(
            set(
                fixture("revenuecat", "transfer"),
                "/event/id",
                json!(fresh("rc-")),
            ),
            "/event/transferred_from",
            json!([A]),
        ),
        "/event/transferred_to",
        json!([B]),
    );
    let transfer = set(
        transfer,
        "/event/event_timestamp_ms",
        json!(now_ms() - 40 * MINUTE_MS),
    );
    let late_renewal = rc_for(rc("renewal", 45, Some(in_30)), A);
    let purchase_c = set(
        rc_for(rc("initial_purchase", 30, Some(in_7)), C),
        "/event/aliases",
        json!([ANON, C]),
    );
    let anonymous_renewal = set(
        rc_for(rc("renewal", 20, Some(in_30)), C),
        "/event/app_user_id",
        json!(ANON),
    );
    let anonymous_renewal = set(anonymous_renewal, "/event/aliases", json!([ANON]));
    let billing_issue = rc_for(rc("billing_issue", 10, Some(in_30)), C);
    // B cancels the subscription the transfer gave them (its transaction is still A's).
    let cancellation = set(
        rc_for(rc("cancellation", 5, Some(in_30)), A),
        "/event/app_user_id",
        json!(B),
    );
    let nothing = rc_for(rc("test", 3, None), B);
    let product_change = rc_for(rc("product_change", 2, Some(in_30)), B);
    vec![
        purchase_a.clone(),
        purchase_a,
        transfer,
        late_renewal,
        purchase_c,
        anonymous_renewal.clone(),
        billing_issue,
        anonymous_renewal,
        cancellation,
        nothing,
        product_change,
    ]
}

/// Everything the history left that either engine can be asked for, without ids or clock times.
async fn outcome(app: &TestApp, answers: Vec<Value>) -> Value {
    let db = &app.services().db;
    let mut users = serde_json::Map::new();
    for user in [A, B, C, ANON, ALIAS] {
        let holdings = db.holdings(user).await.expect("holdings");
        let mut app_events = serde_json::Map::new();
        for kind in ["entitlement.activated", "entitlement.deactivated"] {
            let n = app
                .db
                .scalar(&format!(
                    "SELECT COUNT(*) FROM app_events WHERE user_id = '{}' AND event_type = '{kind}'",
                    user.replace('\'', "''")
                ))
                .await;
            app_events.insert(kind.into(), json!(n));
        }
        users.insert(
            user.into(),
            json!({
                "holdings": format!("{holdings:?}"),
                "entitlements": entitlements(app, user).await,
                "app_events": app_events,
            }),
        );
    }
    let filter = EventFilter {
        limit: 1000,
        ..EventFilter::default()
    };
    let mut events: Vec<Value> = db
        .billing_events(&filter)
        .await
        .expect("events")
        .into_iter()
        .map(|e| {
            json!([
                e.provider,
                e.event_id,
                e.event_type,
                e.user_id,
                e.product_id,
                e.environment,
                e.event_at.timestamp_millis(),
                e.outcome
            ])
        })
        .collect();
    events.sort_by_key(|e| e.to_string());
    let mut audit: Vec<Value> = db
        .audit_rows(None, 1000)
        .await
        .expect("audit")
        .into_iter()
        .map(|r| json!([r.actor, r.action, r.target, r.metadata]))
        .collect();
    audit.sort_by_key(|r| r.to_string());
    json!({ "answers": answers, "users": users, "events": events, "audit": audit })
}

async fn replay(db: TestDb, history: &[Value]) -> Value {
    let (_dir, config) = config_dir();
    let app = app(db, &config)
        .env("APP_EVENTS_URL", "http://127.0.0.1:9/keel-events")
        .env(
            "APP_WEBHOOK_SECRET",
            "app-webhook-secret-for-tests-0123456789",
        )
        .env("WORKER_ENABLED", "false")
        .spawn()
        .await;
    let mut answers = Vec::new();
    for event in history {
        let answer = revenuecat(&app, event).await;
        assert_eq!(answer.status, 200, "{} for {event}", answer.body);
        answers.push(answer.body);
    }
    outcome(&app, answers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_events_leave_the_same_rows_on_both_engines() {
    let Some(postgres) = TestDb::postgres().await else {
        return;
    };
    let history = history();
    let on_sqlite = replay(TestDb::sqlite(), &history).await;
    let on_postgres = replay(postgres, &history).await;
    assert_eq!(
        on_sqlite, on_postgres,
        "SQLite (left) and Postgres (right) differ"
    );
    // The history did something: the transfer carried A's subscription, and the renewal dated
    // before it, to B; the renewal naming only the anonymous id reached C.
    let users = &on_postgres["users"];
    assert_eq!(
        users[B]["entitlements"]["pro"]["active"],
        json!(true),
        "{users}"
    );
    assert_eq!(
        users[A]["entitlements"]["pro"]["active"],
        json!(null),
        "{users}"
    );
    assert_eq!(
        users[C]["entitlements"]["pro"]["active"],
        json!(true),
        "{users}"
    );
    assert_eq!(on_postgres["answers"][1]["duplicate"], json!(true));
    assert!(users[B]["app_events"]["entitlement.activated"].as_i64() > Some(0));
}
