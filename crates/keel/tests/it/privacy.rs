//! Privacy and retention: a user's export holds what is stored about them; after `DELETE /v1/me`
//! and its job no row holds their id (audit rows keep a pseudonym); old raw payloads and old
//! audit detail are dropped by the built-in schedules.

use crate::billing_support;

use std::time::{Duration, Instant};

use billing_support::*;
use keel_testkit::{TestApp, TestDb};
use serde_json::{json, Value};
use sqlx::Row;

const USER: &str = "privacy-user-7f3a";

async fn send(app: &TestApp, method: reqwest::Method, path: &str, bearer: &str) -> (u16, Value) {
    let response = app
        .client
        .request(method, app.url(path))
        .bearer_auth(bearer)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A purchase, a manual grant and an alias for `USER`.
async fn populate(app: &TestApp) {
    let event = fixture("revenuecat", "initial_purchase");
    let event = set(event, "/event/app_user_id", json!(USER));
    let event = set(event, "/event/original_app_user_id", json!(USER));
    let event = set(event, "/event/expiration_at_ms", json!(ms_in_days(7)));
    let event = set(event, "/event/event_timestamp_ms", json!(ms_in_days(0)));
    assert_eq!(revenuecat(app, &event).await.status, 200);
    let grant = json!({ "entitlement": "beta", "reason": "tester" });
    let r = app
        .client
        .post(app.url(&format!("/admin/api/users/{USER}/grants")))
        .bearer_auth(ADMIN)
        .json(&grant)
        .send()
        .await
        .expect("grant");
    assert_eq!(r.status(), 200);
    let (status, _) = send(app, reqwest::Method::GET, "/v1/me", &token(USER)).await;
    assert_eq!(status, 200);
}

/// Every text rendering of every row, per table, of the app's database.
async fn all_rows(db: &TestDb) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if db.is_postgres() {
        let pool = sqlx::PgPool::connect(db.url()).await.expect("connect");
        let tables = sqlx::query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()",
        )
        .fetch_all(&pool)
        .await
        .expect("tables");
        for t in tables {
            let table: String = t.get("table_name");
            let rows = sqlx::query(&format!("SELECT t::text AS row FROM \"{table}\" t"))
                .fetch_all(&pool)
                .await
                .expect("rows");
            out.extend(
                rows.iter()
                    .map(|r| (table.clone(), r.get::<String, _>("row"))),
            );
        }
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(db.url()).await.expect("connect");
        let tables = sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&pool)
            .await
            .expect("tables");
        for t in tables {
            let table: String = t.get("name");
            let columns = sqlx::query(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .fetch_all(&pool)
                .await
                .expect("columns");
            for c in columns {
                let column: String = c.get("name");
                let rows = sqlx::query(&format!(
                    "SELECT CAST(\"{column}\" AS TEXT) AS v FROM \"{table}\""
                ))
                .fetch_all(&pool)
                .await
                .expect("values");
                out.extend(rows.iter().filter_map(|r| {
                    r.try_get::<Option<String>, _>("v")
                        .ok()
                        .flatten()
                        .map(|v| (table.clone(), v))
                }));
            }
        }
        pool.close().await;
    }
    out
}

keel_testkit::engine_test!(export_holds_the_users_data_and_erasure_leaves_no_row_with_the_id);
async fn export_holds_the_users_data_and_erasure_leaves_no_row_with_the_id(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    populate(&app).await;

    let (status, export) = send(&app, reqwest::Method::GET, "/v1/me/export", &token(USER)).await;
    assert_eq!(status, 200, "{export}");
    assert_eq!(export["user_id"], USER);
    assert_eq!(export["user"]["id"], USER);
    assert_eq!(export["entitlements"]["pro"]["active"], true, "{export}");
    assert_eq!(
        export["entitlements"]["beta"]["source"], "manual",
        "{export}"
    );
    assert_eq!(
        export["subscriptions"].as_array().map(Vec::len),
        Some(1),
        "{export}"
    );
    let events = export["billing_events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{export}");
    assert_eq!(
        events[0]["payload"]["event"]["app_user_id"], USER,
        "the raw payload is opened"
    );
    assert_eq!(events[0]["payload_form"], "json");
    assert_eq!(export["entitlement_overrides"][0]["entitlement"], "beta");
    assert!(export["billing_links"]
        .as_array()
        .is_some_and(|l| !l.is_empty()));
    let actions: Vec<&str> = export["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"billing.event") && actions.contains(&"entitlement.grant"),
        "{actions:?}"
    );
    assert!(all_rows(&app.db)
        .await
        .iter()
        .any(|(_, row)| row.contains(USER)));

    let (status, body) = send(&app, reqwest::Method::DELETE, "/v1/me", &token(USER)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "scheduled");
    let started = Instant::now();
    loop {
        let holding: Vec<(String, String)> = all_rows(&app.db)
            .await
            .into_iter()
            .filter(|(_, row)| row.contains(USER))
            .collect();
        if holding.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "rows still hold the id: {holding:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The audit trail stays, under a pseudonym, with the erasure itself recorded.
    let r = app
        .client
        .get(app.url("/admin/api/audit?limit=100"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("audit");
    let audit: Value = r.json().await.expect("json");
    let rows = audit.as_array().expect("rows");
    let erased = rows
        .iter()
        .find(|a| a["action"] == "user.erased")
        .expect("user.erased row");
    let pseudonym = erased["target"].as_str().expect("target");
    assert!(pseudonym.starts_with("h1:"), "{erased}");
    assert!(
        rows.iter()
            .any(|a| a["action"] == "billing.event" && a["target"] == pseudonym),
        "{audit}"
    );
    assert_eq!(entitlements(&app, USER).await, json!({}));
}

keel_testkit::engine_test!(retention_drops_old_raw_payloads_and_audit_detail);
async fn retention_drops_old_raw_payloads_and_audit_detail(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config)
        .env("RETENTION_RAW_EVENT_DAYS", "0")
        .env("RETENTION_AUDIT_DAYS", "0")
        .spawn()
        .await;
    populate(&app).await;
    // The schedules' jobs, enqueued now (a trigger would be deduplicated against the tick
    // the schedules fired when the app started).
    for kind in ["retention.events", "privacy.maintenance"] {
        let r = app
            .client
            .post(app.url("/admin/api/jobs"))
            .bearer_auth(ADMIN)
            .json(&json!({ "kind": kind }))
            .send()
            .await
            .expect("enqueue");
        assert!(r.status().is_success(), "{kind}: {}", r.status());
    }
    let started = Instant::now();
    loop {
        let (_, export) = send(&app, reqwest::Method::GET, "/v1/me/export", &token(USER)).await;
        let payload_gone = export["billing_events"][0]["payload"].is_null()
            && export["billing_events"][0]["payload_form"] == "dropped";
        // Rows written before the jobs ran lose their detail (the enqueues' own rows may
        // be written after).
        let detail_gone = export["audit"].as_array().is_some_and(|a| {
            a.iter()
                .filter(|row| {
                    row["action"] == "billing.event" || row["action"] == "entitlement.grant"
                })
                .all(|row| row["metadata"] == json!({}))
        });
        if payload_gone && detail_gone {
            // The projection and the entitlement stay.
            assert_eq!(
                export["billing_events"][0]["type"], "INITIAL_PURCHASE",
                "{export}"
            );
            assert_eq!(export["entitlements"]["pro"]["active"], true, "{export}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{export}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

keel_testkit::engine_test!(an_export_keeps_a_payload_too_deep_to_rebuild);
async fn an_export_keeps_a_payload_too_deep_to_rebuild(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let event = fixture("revenuecat", "initial_purchase");
    let event = set(event, "/event/app_user_id", json!(USER));
    let event = set(event, "/event/original_app_user_id", json!(USER));
    let event = set(event, "/event/expiration_at_ms", json!(ms_in_days(7)));
    let event = set(event, "/event/event_timestamp_ms", json!(ms_in_days(0)));
    // An extra field nested 10,000 levels deep, past serde_json's limit of 128.
    let text = event.to_string();
    let deep = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    let body = format!("{},\"extra\":{deep}}}", &text[..text.len() - 1]);
    let answer = revenuecat_raw(&app, Some(&format!("Bearer {RC_SECRET}")), body.as_bytes()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);

    let (status, export) = send(&app, reqwest::Method::GET, "/v1/me/export", &token(USER)).await;
    assert_eq!(status, 200);
    let event = &export["billing_events"][0];
    assert_eq!(event["payload_form"], "text", "{event}");
    assert_eq!(event["payload"].as_str(), Some(body.as_str()));
}
