//! Order and completeness: a thousand changes through a receiver that fails 30% of its calls all
//! arrive, each user's in sequence order; a refused event holds back the user's later ones; two
//! transactions about one user never share a sequence number.

use super::*;

use std::collections::{BTreeMap, BTreeSet};

use keel::billing::Override;

const USERS: usize = 40;
const TOGGLES: usize = 25;

fn set(name: &str, revoked: bool) -> Override {
    Override {
        entitlement: name.into(),
        revoked,
        expires_at: None,
        reason: "test".into(),
    }
}

keel_testkit::engine_test!(a_thousand_changes_through_a_flaky_receiver_arrive_in_order);
async fn a_thousand_changes_through_a_flaky_receiver_arrive_in_order(db: TestDb) {
    // Three calls in every ten fail: two with a 503, one with a 500.
    let plan: Plan = Arc::new(|n, _| match n % 10 {
        1 | 4 => (503, None),
        7 => (500, None),
        _ => (200, None),
    });
    let (app, receiver, _dir) = app_and_receiver(db, plan).await;
    let billing = &app.services().billing;
    for round in 0..TOGGLES {
        for u in 0..USERS {
            let user = format!("flaky-{u}");
            billing
                .set_override(&user, set("pro", round % 2 == 1), "test")
                .await
                .unwrap();
        }
    }
    let written = stored(&app).await;
    assert_eq!(written.len(), USERS * TOGGLES);
    // Two dispatchers (as two processes would run them) pass at the same time.
    let (one, two) = (dispatcher(&app), dispatcher(&app));
    for _ in 0..2_000 {
        let (a, b) = tokio::join!(one.run_once(), two.run_once());
        if a.unwrap().attempted() + b.unwrap().attempted() == 0 {
            if app.services().db.app_events_backlog().await.unwrap() == 0 {
                break;
            }
            app.clock().advance(Duration::from_secs(60));
        }
    }
    assert_eq!(app.services().db.app_events_backlog().await.unwrap(), 0);

    let calls = receiver.calls();
    let failed = calls.iter().filter(|c| c.status >= 300).count();
    assert!(
        failed * 10 >= calls.len() * 3 - 10,
        "{failed} of {}",
        calls.len()
    );
    let ids: BTreeSet<&str> = written.iter().map(|e| e.id.as_str()).collect();
    let arrived: BTreeSet<&str> = calls
        .iter()
        .filter(|c| c.status == 200)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(arrived, ids, "every event arrives");
    // Per user: attempts never run ahead of the last acknowledged event.
    let mut acknowledged: BTreeMap<String, i64> = BTreeMap::new();
    for call in &calls {
        assert!(call.verified);
        let body = call.json();
        let user = body["user_id"].as_str().unwrap().to_string();
        let sequence = body["sequence"].as_i64().unwrap();
        let last = acknowledged.entry(user.clone()).or_insert(0);
        assert!(
            sequence == *last + 1,
            "{user}: sequence {sequence} attempted after {last} was acknowledged"
        );
        if call.status == 200 {
            *last = sequence;
        }
        let expected = if sequence % 2 == 1 {
            "entitlement.activated"
        } else {
            "entitlement.deactivated"
        };
        assert_eq!(body["type"], expected, "{user} #{sequence}");
    }
    assert!(acknowledged.values().all(|&s| s == TOGGLES as i64));
    // No event was delivered twice: each was acknowledged once.
    let accepted = calls.iter().filter(|c| c.status == 200).count();
    assert_eq!(accepted, USERS * TOGGLES);
}

keel_testkit::engine_test!(a_refused_event_holds_back_the_users_later_events);
async fn a_refused_event_holds_back_the_users_later_events(db: TestDb) {
    // The first attempt of the user "held" is refused.
    let refused = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let plan: Plan = Arc::new(move |_, body| {
        let first =
            body["user_id"] == "held" && !refused.swap(true, std::sync::atomic::Ordering::SeqCst);
        if first {
            (404, None)
        } else {
            (200, None)
        }
    });
    let (app, receiver, _dir) = app_and_receiver(db, plan).await;
    let billing = &app.services().billing;
    billing
        .set_override("held", set("pro", false), "test")
        .await
        .unwrap();
    billing
        .set_override("held", set("pro", true), "test")
        .await
        .unwrap();
    billing
        .set_override("other", set("pro", false), "test")
        .await
        .unwrap();
    let d = dispatcher(&app);
    let pass = d.run_once().await.unwrap();
    assert_eq!((pass.refused, pass.delivered), (1, 1), "{pass:?}");
    // The refused head waits an hour; the user's second event waits behind it.
    app.clock().advance(Duration::from_secs(3500));
    assert_eq!(d.run_once().await.unwrap().attempted(), 0);
    let held = app.services().db.app_events_of("held").await.unwrap();
    assert!(held[0]
        .last_error
        .as_deref()
        .unwrap()
        .starts_with("HTTP 404"));
    assert!(held.iter().all(|e| e.delivered_at.is_none()));
    // Operators see what waits, and why.
    let reply = keel_testkit::admin(
        &app,
        reqwest::Method::GET,
        "/admin/api/events?pending=true",
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let pending = reply.body.as_array().unwrap();
    assert_eq!(pending.len(), 2, "{pending:?}");
    assert_eq!(pending[0]["user_id"], "held");
    assert_eq!(pending[0]["sequence"], 1);
    assert_eq!(pending[0]["attempts"], 1);
    assert!(pending[0]["last_error"]
        .as_str()
        .unwrap()
        .starts_with("HTTP 404"));
    assert!(pending[0].get("data").is_none());
    let anonymous = app.get("/admin/api/events").await;
    assert_eq!(anonymous.status(), 401);
    app.clock().advance(Duration::from_secs(101));
    assert_eq!(d.run_once().await.unwrap().delivered, 1);
    assert_eq!(d.run_once().await.unwrap().delivered, 1);
    let order: Vec<(String, i64)> = receiver
        .calls()
        .iter()
        .map(|c| c.json())
        .filter(|b| b["user_id"] == "held")
        .map(|b| {
            (
                b["type"].as_str().unwrap().to_string(),
                b["sequence"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            ("entitlement.activated".to_string(), 1),
            ("entitlement.activated".to_string(), 1),
            ("entitlement.deactivated".to_string(), 2)
        ]
    );
    let metrics = keel::metrics::render();
    assert!(
        metrics
            .contains("keel_app_events_total{type=\"entitlement.activated\",outcome=\"refused\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("\nkeel_app_events_backlog "), "{metrics}");
}

keel_testkit::engine_test!(concurrent_changes_to_one_user_get_distinct_sequences);
async fn concurrent_changes_to_one_user_get_distinct_sequences(db: TestDb) {
    let (app, _receiver, _dir) = app_and_receiver(db, Arc::new(|_, _| (200, None))).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let billing = app.services().billing.clone();
        tasks.spawn(async move {
            billing
                .set_override("busy", set(&format!("e{i}"), false), "test")
                .await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    let events = app.services().db.app_events_of("busy").await.unwrap();
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=20).collect::<Vec<i64>>());
    let names: BTreeSet<String> = events.iter().map(|e| e.data.clone()).collect();
    assert_eq!(names.len(), 20, "one event per entitlement granted");
}
