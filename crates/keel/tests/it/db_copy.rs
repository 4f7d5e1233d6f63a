//! `keel::ops::db_copy`: a SQLite instance populated through Keel itself moves to Postgres and
//! serves the same answers there; Postgres copies back to SQLite losslessly; a non-empty target,
//! a failure half-way and a source without migrations leave the target as it was.

use crate::billing_support;

use std::collections::BTreeMap;
use std::time::Duration;

use billing_support::*;
use keel::ops::db_copy::{self, CopyError, CopyReport};
use keel::store::migrate::Migrator;
use keel_testkit::{admin, TestApp, TestDb};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::{Connection, Row, TypeInfo, ValueRef};

const WAIT: Duration = Duration::from_secs(60);
const USERS: [&str; 3] = ["copy-user-1", "copy-user-2", "copy-user-3"];
const RUN_AT: &str = "2031-05-06T07:08:09.123Z";

/// `GET /v1/me` as `user` (the user row is made on first sight).
async fn me(app: &TestApp, user: &str) -> Value {
    let response = app
        .client
        .get(app.url("/v1/me"))
        .bearer_auth(token(user))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON")
}

async fn enqueue(app: &TestApp, spec: Value) -> i64 {
    admin(app, Method::POST, "/admin/api/jobs", Some(&spec))
        .await
        .success()["id"]
        .as_i64()
        .expect("job id")
}

/// A RevenueCat purchase of the weekly product (grants `pro`) for `user`.
fn purchase(user: &str) -> Value {
    let event = fixture("revenuecat", "initial_purchase");
    let id = uuid::Uuid::now_v7().simple().to_string();
    let event = set(event, "/event/app_user_id", json!(user));
    let event = set(event, "/event/id", json!(id));
    let event = set(event, "/event/transaction_id", json!(id));
    let event = set(event, "/event/original_transaction_id", json!(id));
    set(event, "/event/expiration_at_ms", json!(ms_in_days(7)))
}

/// A SQLite instance after real traffic: purchases, jobs, a flag, a manual grant.
struct Populated {
    db: TestDb,
    config: (tempfile::TempDir, std::path::PathBuf),
    /// `GET /v1/me/entitlements` of each user before the copy.
    entitlements: Vec<Value>,
    /// `GET /v1/me` of each user before the copy.
    profiles: Vec<Value>,
    /// A job scheduled at `RUN_AT`.
    scheduled_job: i64,
}

async fn populate() -> Populated {
    let (dir, config) = config_dir();
    let mut app = app(TestDb::sqlite(), &config).spawn().await;
    let mut profiles = Vec::new();
    for user in USERS {
        profiles.push(me(&app, user).await);
        let answer = revenuecat(&app, &purchase(user)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let scheduled_job = enqueue(
        &app,
        json!({ "kind": "diag.noop", "queue": "archive", "run_at": RUN_AT,
                "args": { "n": 1, "nested": { "list": [1, 2, 3], "flag": true } } }),
    )
    .await;
    for n in 0..3 {
        enqueue(&app, json!({ "kind": "diag.noop", "args": { "n": n } })).await;
    }
    admin(
        &app,
        Method::PUT,
        "/admin/api/flags/queue:archive",
        Some(&json!({ "enabled": false })),
    )
    .await
    .success();
    admin(
        &app,
        Method::POST,
        &format!("/admin/api/users/{}/grants", USERS[0]),
        Some(&json!({ "entitlement": "beta", "expires_at": null, "reason": "db copy test" })),
    )
    .await
    .success();
    let mut before = Vec::new();
    for user in USERS {
        before.push(entitlements(&app, user).await);
    }
    app.begin_shutdown();
    app.finished().await.expect("the source app stops cleanly");
    Populated {
        db: app.db,
        config: (dir, config),
        entitlements: before,
        profiles,
        scheduled_job,
    }
}

async fn sqlite(db: &TestDb) -> sqlx::SqliteConnection {
    sqlx::SqliteConnection::connect(db.url())
        .await
        .expect("sqlite")
}

async fn postgres(db: &TestDb) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(db.url())
        .await
        .expect("postgres")
}

async fn migrate(db: &TestDb) {
    Migrator::new(&SecretString::from(db.url().to_string()), WAIT)
        .expect("migrator")
        .up(false)
        .await
        .expect("migrate up");
}

fn counts(report: &CopyReport) -> BTreeMap<String, u64> {
    report
        .tables
        .iter()
        .map(|t| (t.table.clone(), t.rows))
        .collect()
}

async fn count_all(db: &TestDb, tables: &[String]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for table in tables {
        let n = db.scalar(&format!("SELECT count(*) FROM {table}")).await;
        out.insert(table.clone(), n as u64);
    }
    out
}

/// Every row of every table of a SQLite database, as sorted text (JSON normalized).
async fn dump(db: &TestDb, tables: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut conn = sqlite(db).await;
    let mut out = BTreeMap::new();
    for table in tables {
        let rows = sqlx::query(&format!("SELECT * FROM {table}"))
            .fetch_all(&mut conn)
            .await
            .expect("select");
        let mut lines: Vec<String> = rows
            .iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        let raw = row.try_get_raw(i).expect("cell");
                        let storage = raw.type_info().name().to_string();
                        match (raw.is_null(), storage.as_str()) {
                            (true, _) => "NULL".to_string(),
                            (_, "INTEGER") => row.get::<i64, _>(i).to_string(),
                            (_, "REAL") => row.get::<f64, _>(i).to_string(),
                            (_, "BLOB") => format!("x{:02x?}", row.get::<Vec<u8>, _>(i)),
                            _ => {
                                let text: String = row.get(i);
                                match serde_json::from_str::<Value>(&text) {
                                    Ok(v @ (Value::Object(_) | Value::Array(_))) => v.to_string(),
                                    _ => format!("{text:?}"),
                                }
                            }
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect();
        lines.sort();
        out.insert(table.clone(), lines);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_moves_a_live_instance() {
    let Some(target) = TestDb::postgres().await else {
        return;
    };
    let source = populate().await;
    let report = db_copy::copy(source.db.url(), target.url(), WAIT)
        .await
        .expect("copy");
    assert_eq!(report.from, keel::store::Engine::Sqlite);
    assert_eq!(report.to, keel::store::Engine::Postgres);
    let tables: Vec<String> = report.tables.iter().map(|t| t.table.clone()).collect();
    assert_eq!(tables[0], "users");
    let expected = count_all(&source.db, &tables).await;
    assert_eq!(counts(&report), expected);
    assert_eq!(count_all(&target, &tables).await, expected);
    assert_eq!(report.rows, expected.values().sum::<u64>());
    for table in [
        "users",
        "jobs",
        "flags",
        "audit_log",
        "billing_events",
        "subscriptions",
    ] {
        assert!(
            expected[table] > 0,
            "{table} should hold rows: {expected:?}"
        );
    }
    assert_eq!(expected["entitlement_overrides"], 1);

    let mut lite = sqlite(&source.db).await;
    let mut pg = postgres(&target).await;
    // Times: milliseconds since the epoch to timestamptz, to the millisecond.
    let id = source.scheduled_job;
    let run_at: i64 = sqlx::query_scalar(&format!("SELECT run_at FROM jobs WHERE id = {id}"))
        .fetch_one(&mut lite)
        .await
        .unwrap();
    let run_at_ms = chrono::DateTime::parse_from_rfc3339(RUN_AT)
        .unwrap()
        .timestamp_millis();
    assert_eq!(run_at, run_at_ms);
    let copied: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar(&format!("SELECT run_at FROM jobs WHERE id = {id}"))
            .fetch_one(&mut pg)
            .await
            .unwrap();
    assert_eq!(
        copied.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        RUN_AT
    );
    let times = "SELECT id, created_at FROM jobs ORDER BY id";
    let lite_times: Vec<(i64, i64)> = sqlx::query_as(times).fetch_all(&mut lite).await.unwrap();
    let pg_times: Vec<(i64, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as(times).fetch_all(&mut pg).await.unwrap();
    let pg_times: Vec<(i64, i64)> = pg_times
        .into_iter()
        .map(|(id, t)| (id, t.timestamp_millis()))
        .collect();
    assert_eq!(lite_times, pg_times);
    // Booleans.
    let enabled: bool =
        sqlx::query_scalar("SELECT enabled FROM flags WHERE name = 'queue:archive'")
            .fetch_one(&mut pg)
            .await
            .unwrap();
    assert!(!enabled);
    let granting: i64 = sqlx::query_scalar("SELECT count(*) FROM subscriptions WHERE grants = 1")
        .fetch_one(&mut lite)
        .await
        .unwrap();
    let pg_granting: i64 = sqlx::query_scalar("SELECT count(*) FROM subscriptions WHERE grants")
        .fetch_one(&mut pg)
        .await
        .unwrap();
    assert_eq!((granting, pg_granting), (3, 3));
    // JSON text to jsonb, TEXT ids to UUIDs.
    let audit = "SELECT id, metadata FROM audit_log ORDER BY id";
    let lite_audit: Vec<(String, String)> =
        sqlx::query_as(audit).fetch_all(&mut lite).await.unwrap();
    let pg_audit: Vec<(uuid::Uuid, Value)> =
        sqlx::query_as(audit).fetch_all(&mut pg).await.unwrap();
    assert!(!lite_audit.is_empty());
    let lite_audit: Vec<(String, Value)> = lite_audit
        .into_iter()
        .map(|(id, m)| (id, serde_json::from_str(&m).unwrap()))
        .collect();
    let pg_audit: Vec<(String, Value)> = pg_audit
        .into_iter()
        .map(|(id, m)| (id.hyphenated().to_string(), m))
        .collect();
    assert_eq!(lite_audit, pg_audit);
    let args: Value = sqlx::query_scalar(&format!("SELECT args FROM jobs WHERE id = {id}"))
        .fetch_one(&mut pg)
        .await
        .unwrap();
    assert_eq!(
        args,
        json!({ "n": 1, "nested": { "list": [1, 2, 3], "flag": true } })
    );
    // The sealed payloads, byte for byte.
    let payloads = "SELECT provider, event_id, key_id, payload FROM billing_events ORDER BY provider, event_id";
    type Payload = (String, String, Option<String>, Option<Vec<u8>>);
    let lite_payloads: Vec<Payload> = sqlx::query_as(payloads).fetch_all(&mut lite).await.unwrap();
    let pg_payloads: Vec<Payload> = sqlx::query_as(payloads).fetch_all(&mut pg).await.unwrap();
    assert_eq!(lite_payloads.len(), 3);
    assert!(lite_payloads
        .iter()
        .all(|p| p.3.as_ref().is_some_and(|b| b.len() > 16)));
    assert_eq!(lite_payloads, pg_payloads);
    let max_id: i64 = sqlx::query_scalar("SELECT max(id) FROM jobs")
        .fetch_one(&mut lite)
        .await
        .unwrap();
    drop((lite, pg));

    // Keel serves from the copy: same entitlements, and new jobs get ids past the copied ones.
    let app = app(target, &source.config.1).spawn().await;
    for (i, user) in USERS.iter().enumerate() {
        assert_eq!(
            entitlements(&app, user).await,
            source.entitlements[i],
            "{user}"
        );
        assert_eq!(me(&app, user).await, source.profiles[i], "{user}");
    }
    let new_id = enqueue(&app, json!({ "kind": "diag.noop" })).await;
    assert!(new_id > max_id, "new job id {new_id} must follow {max_id}");
    app.shutdown().await.expect("the target app stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_sqlite_round_trip_is_lossless() {
    let Some(middle) = TestDb::postgres().await else {
        return;
    };
    let source = populate().await;
    let there = db_copy::copy(source.db.url(), middle.url(), WAIT)
        .await
        .expect("sqlite to postgres");
    let back = TestDb::sqlite();
    let report = db_copy::copy(middle.url(), back.url(), WAIT)
        .await
        .expect("postgres to sqlite");
    assert_eq!(report.from, keel::store::Engine::Postgres);
    assert_eq!(report.to, keel::store::Engine::Sqlite);
    assert_eq!(counts(&report), counts(&there));
    let tables: Vec<String> = report.tables.iter().map(|t| t.table.clone()).collect();
    assert_eq!(dump(&back, &tables).await, dump(&source.db, &tables).await);

    let max_id = back.scalar("SELECT max(id) FROM jobs").await;
    let app = app(back, &source.config.1).spawn().await;
    for (user, before) in USERS.iter().zip(&source.entitlements) {
        assert_eq!(&entitlements(&app, user).await, before, "{user}");
    }
    let new_id = enqueue(&app, json!({ "kind": "diag.noop" })).await;
    assert!(new_id > max_id, "new job id {new_id} must follow {max_id}");
    app.shutdown().await.expect("app stops");
}

/// A migrated SQLite database with a few rows in several tables and 2,500 in `jobs` and
/// `billing_links` (several batches, one with a two-column key).
async fn seeded() -> TestDb {
    let db = TestDb::sqlite();
    migrate(&db).await;
    db.execute(
        r#"
        INSERT INTO users (id, tenant_id, created_at, last_seen_at)
            VALUES ('u1', 't1', 1700000000123, 1700000000456), ('u2', NULL, 1700000001000, 1700000002000);
        INSERT INTO flags (name, enabled, updated_at, updated_by)
            VALUES ('queue:x', 0, 1700000000000, 'test'), ('scheduler', 1, 1700000000001, 'test');
        INSERT INTO audit_log (id, at, actor, action, target, metadata)
            VALUES ('0190a4b2-7c3d-7e8f-9a0b-1c2d3e4f5a6b', 1700000000000, 'cli', 'flag.set', 'flag:queue:x', '{"enabled":false}');
        INSERT INTO subscriptions (provider, key, user_id, subject, environment, platform, product_id,
                                   entitlements, grants, will_renew, state_rank, state_at, state_event, updated_at)
            VALUES ('revenuecat', 'k1', 'u1', 'u1', 'production', 'ios', 'p', '["pro"]', 1, 0, 1,
                    1700000000000, 'e1', 1700000000000);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)
        INSERT INTO jobs (queue, kind, args, state, run_at, timeout_ms, created_at, finished_at)
            SELECT 'bulk', 'diag.noop', '{"i":' || i || '}', 'completed', 1700000000000 + i, 60000,
                   1700000000000, CASE WHEN i % 2 = 0 THEN 1700000009999 END FROM n;
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)
        INSERT INTO billing_links (provider, external_id, user_id)
            SELECT CASE WHEN i % 3 = 0 THEN 'stripe' ELSE 'revenuecat' END, 'ext-' || i, 'u' || (i % 7) FROM n;
        "#,
    )
    .await;
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_tables_copy_in_batches_both_ways() {
    let Some(middle) = TestDb::postgres().await else {
        return;
    };
    let source = seeded().await;
    let there = db_copy::copy(source.url(), middle.url(), WAIT)
        .await
        .expect("copy");
    assert_eq!(counts(&there)["jobs"], 2500);
    assert_eq!(counts(&there)["billing_links"], 2500);
    let tables: Vec<String> = there.tables.iter().map(|t| t.table.clone()).collect();
    assert_eq!(count_all(&middle, &tables).await, counts(&there));
    let back = TestDb::sqlite();
    let report = db_copy::copy(middle.url(), back.url(), WAIT)
        .await
        .expect("copy back");
    assert_eq!(counts(&report), counts(&there));
    assert_eq!(dump(&back, &tables).await, dump(&source, &tables).await);
}

fn empty_counts(tables: &BTreeMap<String, u64>) -> bool {
    tables.values().all(|n| *n == 0)
}

async fn keel_tables() -> Vec<String> {
    let empty = TestDb::sqlite();
    migrate(&empty).await;
    let target = TestDb::sqlite();
    let report = db_copy::copy(empty.url(), target.url(), WAIT)
        .await
        .expect("an empty copy");
    assert_eq!(report.rows, 0);
    report.tables.into_iter().map(|t| t.table).collect()
}

keel_testkit::engine_test!(a_non_empty_target_is_refused_and_left_alone);
async fn a_non_empty_target_is_refused_and_left_alone(db: TestDb) {
    let source = seeded().await;
    migrate(&db).await;
    db.execute(
        "INSERT INTO job_leases (worker, expires_at) VALUES ('w1', CURRENT_TIMESTAMP)"
            .replace(
                "CURRENT_TIMESTAMP",
                if db.is_postgres() {
                    "now()"
                } else {
                    "1700000000000"
                },
            )
            .as_str(),
    )
    .await;
    let err = db_copy::copy(source.url(), db.url(), WAIT)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CopyError::TargetNotEmpty { table, rows: 1 } if table == "job_leases"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the target is not empty (job_leases has 1 rows)"
    );
    let tables = keel_tables().await;
    let after = count_all(&db, &tables).await;
    assert_eq!(after["job_leases"], 1);
    assert_eq!(after.values().sum::<u64>(), 1, "{after:?}");
}

keel_testkit::engine_test!(a_failure_half_way_leaves_the_target_empty);
async fn a_failure_half_way_leaves_the_target_empty(db: TestDb) {
    let source = seeded().await;
    migrate(&db).await;
    // `subscriptions` comes after `users`, `jobs` and the others: they are written first.
    db.execute(if db.is_postgres() {
            "ALTER TABLE subscriptions ADD COLUMN required_extra TEXT NOT NULL"
        } else {
            "ALTER TABLE subscriptions ADD COLUMN required_extra TEXT CHECK (required_extra IS NOT NULL)"
        })
        .await;
    let err = db_copy::copy(source.url(), db.url(), WAIT)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CopyError::Database { step, .. } if step == "table subscriptions"),
        "{err:?}"
    );
    assert!(err.to_string().contains("subscriptions"), "{err}");
    let tables = keel_tables().await;
    let after = count_all(&db, &tables).await;
    assert!(empty_counts(&after), "nothing may be committed: {after:?}");
    // The same target takes the copy once the obstacle is gone.
    db.execute("ALTER TABLE subscriptions DROP COLUMN required_extra")
        .await;
    let report = db_copy::copy(source.url(), db.url(), WAIT)
        .await
        .expect("copy");
    assert_eq!(count_all(&db, &tables).await, counts(&report));
}

keel_testkit::engine_test!(a_value_that_does_not_convert_names_its_column);
async fn a_value_that_does_not_convert_names_its_column(db: TestDb) {
    let source = seeded().await;
    source
        .execute("UPDATE flags SET enabled = 2 WHERE name = 'scheduler'")
        .await;
    let result = db_copy::copy(source.url(), db.url(), WAIT).await;
    if !db.is_postgres() {
        // SQLite to SQLite keeps the integer as it is.
        result.expect("sqlite keeps integers");
        return;
    }
    let err = result.unwrap_err();
    assert!(
        matches!(&err, CopyError::Convert { table, column, .. } if table == "flags" && column == "enabled"),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("flags.enabled: "), "{err}");
    let after = count_all(&db, &keel_tables().await).await;
    assert!(empty_counts(&after), "{after:?}");
}

keel_testkit::engine_test!(a_source_without_every_migration_is_refused);
async fn a_source_without_every_migration_is_refused(db: TestDb) {
    let source = TestDb::sqlite();
    let path = source.path().expect("sqlite path");
    std::fs::write(&path, b"").expect("an empty database file");
    let err = db_copy::copy(source.url(), db.url(), WAIT)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CopyError::SourceNotMigrated { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("keel migrate up"), "{err}");
    Migrator::new(&SecretString::from(source.url().to_string()), WAIT)
        .unwrap()
        .up(false)
        .await
        .unwrap();
    Migrator::new(&SecretString::from(source.url().to_string()), WAIT)
        .unwrap()
        .down(1, false)
        .await
        .unwrap();
    let err = db_copy::copy(source.url(), db.url(), WAIT)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("0002, 0003"), "{err}");
    // The target was not touched: not even migrated (or, on SQLite, created).
    match db.path() {
        Some(path) => assert!(!path.exists(), "the target file must not be created"),
        None => {
            let tables = "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()";
            assert_eq!(db.scalar(tables).await, 0);
        }
    }
}

#[tokio::test]
async fn bad_urls_are_usage_errors_without_the_url() {
    let target = TestDb::sqlite();
    let err = db_copy::copy("mysql://root:hunter2@db/keel", target.url(), WAIT)
        .await
        .unwrap_err();
    assert!(err.is_usage(), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let err = db_copy::copy(target.url(), "redis://x", WAIT)
        .await
        .unwrap_err();
    assert!(
        err.is_usage() && err.to_string().starts_with("the target URL"),
        "{err}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_never_echoed() {
    let Some(base) = keel_testkit::postgres_url() else {
        return;
    };
    let source = seeded().await;
    let Some((scheme, after)) = base.split_once("://") else {
        return;
    };
    let Some((userinfo, host)) = after.split_once('@') else {
        return;
    };
    let user = userinfo.split(':').next().unwrap_or("postgres");
    let host = host.split('/').next().unwrap_or(host);
    // A database that does not exist: the server answers with an error (and nothing is written
    // anywhere, whatever authentication the test server uses).
    let wrong = format!("{scheme}://{user}:Wrong-Pass-4242@{host}/keel_no_such_database_4242");
    let err = db_copy::copy(source.url(), &wrong, WAIT).await.unwrap_err();
    let text = err.to_string();
    assert!(
        !text.contains("Wrong-Pass-4242") && !text.contains(&wrong),
        "{text}"
    );
    assert!(matches!(err, CopyError::TargetMigration { .. }), "{err:?}");
}
