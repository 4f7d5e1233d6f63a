//! The admin API and the external scheduler trigger over real HTTP (docs/HTTP.md "Admin API" and
//! "Scheduler trigger", SPEC §4 and §5): authorization, queues, jobs, flags, schedules and the
//! audit trail. Every error answer is checked to be a problem that names no secret.

use crate::admin_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use admin_support::*;
use chrono::{Timelike, Utc};
use keel_testkit::admin;
use keel_testkit::TestDb;
use reqwest::Method;
use serde_json::{json, Value};

mod schedules;

keel_testkit::engine_test!(admin_routes_refuse_missing_and_wrong_tokens);
async fn admin_routes_refuse_missing_and_wrong_tokens(db: TestDb) {
    let (app, _dir) = spawn(
        db,
        &[("ADMIN_TOKEN", ADMIN), ("SCHEDULER_SECRET_KEY", SECRET)],
        false,
    )
    .await;
    let wrong = format!("Bearer {ADMIN}x");
    let short = format!("Bearer {}", &ADMIN[..ADMIN.len() - 1]);
    let scheduler = format!("Bearer {SECRET}");
    let basic = format!("Basic {ADMIN}");
    let tokens = [
        None,
        Some("Bearer"),
        Some("Bearer wrong"),
        Some(wrong.as_str()),
        Some(short.as_str()),
        Some(scheduler.as_str()),
        Some(basic.as_str()),
    ];
    assert_closed(&app, &tokens).await;
    // The right token opens the same routes.
    get(&app, "/admin/api/queues").await.ok(200);
    // The admin token is not the scheduler secret.
    let r =
        send(request(&app, Method::POST, "/v1/scheduler/jobs.prune/trigger").bearer_auth(ADMIN))
            .await;
    r.unauthorized();
}

keel_testkit::engine_test!(admin_routes_are_closed_without_an_admin_token_configured);
async fn admin_routes_are_closed_without_an_admin_token_configured(db: TestDb) {
    let (app, _dir) = spawn(db, &[], false).await;
    let admin = format!("Bearer {ADMIN}");
    assert_closed(
        &app,
        &[None, Some("Bearer"), Some("Bearer x"), Some(admin.as_str())],
    )
    .await;
}

keel_testkit::engine_test!(queues_pause_resume_and_the_audit_trail);
async fn queues_pause_resume_and_the_audit_trail(db: TestDb) {
    let (app, _dir) = spawn(db, &[("ADMIN_TOKEN", ADMIN)], false).await;
    let stats = get(&app, "/admin/api/queues").await.ok(200).clone();
    assert_eq!(keys(&stats), set(&["queues"]), "{stats}");
    let default = &stats["queues"]["default"];
    let mut expected = set(&STATES);
    expected.insert("paused".into());
    assert_eq!(keys(default), expected, "{stats}");
    assert!(STATES.iter().all(|s| default[s].is_i64()), "{stats}");
    assert_eq!(default["paused"], false);

    let r = post(&app, "/admin/api/queues/default/pause").await;
    assert_eq!(r.ok(200), &json!({ "queue": "default", "paused": true }));
    assert_eq!(
        get(&app, "/admin/api/queues").await.body["queues"]["default"]["paused"],
        true
    );
    let r = post(&app, "/admin/api/queues/default/resume").await;
    assert_eq!(r.ok(200), &json!({ "queue": "default", "paused": false }));
    assert_eq!(
        get(&app, "/admin/api/queues").await.body["queues"]["default"]["paused"],
        false
    );
    set_flag(&app, "workers", true).await;

    let rows = audit(&app, "target=flag:queue:default").await;
    assert_eq!(rows.len(), 2, "{rows:#?}");
    for (row, enabled) in rows.iter().zip([true, false]) {
        assert_eq!(row["action"], "flag.set");
        assert_eq!(row["actor"], "admin-token");
        assert_eq!(row["target"], "flag:queue:default");
        assert_eq!(
            row["metadata"]["enabled"], enabled,
            "newest (the resume) first: {rows:#?}"
        );
    }
    assert!(time(&rows[0]["at"]) >= time(&rows[1]["at"]));
    let one = audit(&app, "target=flag:queue:default&limit=1").await;
    assert_eq!(one, rows[..1].to_vec());
    let all = audit(&app, "").await;
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_eq!(all[0]["target"], "flag:workers", "newest first: {all:#?}");
    assert_eq!(all[1..].to_vec(), rows);
    assert_eq!(audit(&app, "limit=2").await, all[..2].to_vec());
    assert!(audit(&app, "target=flag:nothing").await.is_empty());

    post(&app, "/admin/api/queues/bad%20name/pause")
        .await
        .problem(400, "malformed-request");
    get(&app, "/admin/api/audit?limit=many")
        .await
        .problem(400, "malformed-request");
}

keel_testkit::engine_test!(enqueue_answers_and_validation);
async fn enqueue_answers_and_validation(db: TestDb) {
    let (app, _dir) = spawn(db, &[("ADMIN_TOKEN", ADMIN)], false).await;
    let r = post_json(&app, "/admin/api/jobs", json!({ "kind": "diag.noop" })).await;
    assert_eq!(keys(r.ok(201)), set(&["id", "deduplicated"]));
    assert!(
        r.body["id"].is_i64() && r.body["deduplicated"] == false,
        "{}",
        r.body
    );

    post(&app, "/admin/api/queues/default/pause").await.ok(200);
    let spec = json!({ "kind": "diag.noop", "unique_key": "once-1" });
    let first = enqueue(&app, spec.clone()).await;
    let r = post_json(&app, "/admin/api/jobs", spec).await;
    assert_eq!(r.ok(200), &json!({ "id": first, "deduplicated": true }));
    assert_eq!(job(&app, first).await["state"], "available");
    let other = enqueue(&app, json!({ "kind": "diag.noop", "unique_key": "once-2" })).await;
    assert_ne!(other, first);

    let r = post_json(
        &app,
        "/admin/api/jobs",
        json!({ "kind": "bad kind", "max_attempts": 0 }),
    )
    .await;
    r.problem(422, "validation-failed");
    assert_eq!(r.fields(), set(&["kind", "max_attempts"]), "{}", r.body);
    let r = post_json(
        &app,
        "/admin/api/jobs",
        json!({ "kind": "diag.noop", "max_attempts": 0 }),
    )
    .await;
    assert_eq!(r.fields(), set(&["max_attempts"]), "{}", r.body);
    let r = post_json(&app, "/admin/api/jobs", json!({ "kind": 5 })).await;
    r.problem(422, "validation-failed");
    assert_eq!(r.fields(), set(&["kind"]), "{}", r.body);
    post_json(&app, "/admin/api/jobs", json!({}))
        .await
        .problem(422, "validation-failed");
    let r = post_json(
        &app,
        "/admin/api/jobs",
        json!({ "kind": "diag.noop", "bogus": 1 }),
    )
    .await;
    r.problem(422, "validation-failed");
    assert!(
        r.body["detail"].as_str().unwrap().contains("bogus"),
        "{}",
        r.body
    );

    let raw = |body: &'static str, kind: &'static str| {
        request(&app, Method::POST, "/admin/api/jobs")
            .bearer_auth(ADMIN)
            .header("content-type", kind)
            .body(body)
    };
    let r = send(raw("{\"kind\": ", "application/json")).await;
    r.problem(400, "malformed-request");
    assert!(
        r.body["detail"].as_str().unwrap().contains("line 1"),
        "{}",
        r.body
    );
    send(raw("{\"kind\":\"diag.noop\"}", "text/plain"))
        .await
        .problem(415, "unsupported-media-type");
    send(
        request(&app, Method::POST, "/admin/api/jobs")
            .bearer_auth(ADMIN)
            .body("{}"),
    )
    .await
    .problem(415, "unsupported-media-type");

    // Nothing invalid was stored: the two keyed jobs and the first one only.
    assert_eq!(app.db.scalar("SELECT count(*) FROM jobs WHERE kind NOT IN ('jobs.prune', 'retention.events', 'privacy.maintenance', 'storage.cleanup')").await, 3);
    let rows = audit(&app, "target=kind:diag.noop").await;
    assert_eq!(
        rows.len(),
        4,
        "each enqueue is audited, the duplicate too: {rows:#?}"
    );
    assert!(
        rows.iter()
            .all(|r| r["action"] == "job.enqueue" && r["actor"] == "admin-token"),
        "{rows:#?}"
    );
}

keel_testkit::engine_test!(enqueue_kill_switch_and_flags);
async fn enqueue_kill_switch_and_flags(db: TestDb) {
    let (app, _dir) = spawn(db, &[("ADMIN_TOKEN", ADMIN)], false).await;
    let flags = get(&app, "/admin/api/flags").await.ok(200)["flags"].clone();
    let names: BTreeSet<String> = flags
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, set(&["enqueue", "scheduler", "workers"]), "{flags}");
    assert!(
        flags
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["enabled"] == true && f["source"] == "default"),
        "{flags}"
    );

    set_flag(&app, "enqueue", false).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let refused = loop {
        let r = post_json(&app, "/admin/api/jobs", json!({ "kind": "diag.noop" })).await;
        if r.status != 201 {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "enqueue still accepted 5 s after the switch"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    refused.problem(503, "enqueue-disabled");
    assert!(refused.body["type"]
        .as_str()
        .unwrap()
        .ends_with("/enqueue-disabled"));
    let flags = get(&app, "/admin/api/flags").await.body["flags"].clone();
    let enqueue = flags
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "enqueue")
        .unwrap()
        .clone();
    assert_eq!(enqueue["enabled"], false, "{flags}");
    assert_eq!(enqueue["source"], "admin-token", "{flags}");
    assert!(enqueue["updated_at"].is_string(), "{flags}");

    for (name, body) in [
        ("nope", json!({ "enabled": true })),
        ("queue:", json!({ "enabled": true })),
    ] {
        let r = admin(
            &app,
            Method::PUT,
            &format!("/admin/api/flags/{name}"),
            Some(&body),
        )
        .await;
        r.problem(422, "validation-failed");
        assert_eq!(r.fields(), set(&["name"]), "{}", r.body);
    }
    let r = admin(
        &app,
        Method::PUT,
        "/admin/api/flags/enqueue",
        Some(&json!({ "enabled": "no" })),
    )
    .await;
    assert_eq!(r.fields(), set(&["enabled"]), "{}", r.body);
    admin(
        &app,
        Method::PUT,
        "/admin/api/flags/enqueue",
        Some(&json!({ "enabled": true, "x": 1 })),
    )
    .await
    .problem(422, "validation-failed");
    admin(
        &app,
        Method::PUT,
        "/admin/api/flags/enqueue",
        Some(&json!({})),
    )
    .await
    .problem(422, "validation-failed");

    set_flag(&app, "enqueue", true).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = post_json(&app, "/admin/api/jobs", json!({ "kind": "diag.noop" })).await;
        if r.status == 201 {
            break;
        }
        r.problem(503, "enqueue-disabled");
        assert!(
            Instant::now() < deadline,
            "enqueue still refused 5 s after switching it on"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rows = audit(&app, "target=flag:enqueue").await;
    let states: Vec<&Value> = rows.iter().map(|r| &r["metadata"]["enabled"]).collect();
    assert_eq!(states, [&json!(true), &json!(false)], "{rows:#?}");
}

keel_testkit::engine_test!(job_listing_retry_and_discard);
async fn job_listing_retry_and_discard(db: TestDb) {
    let (app, _dir) = spawn(db, &[("ADMIN_TOKEN", ADMIN)], false).await;
    // Fails its one allowed attempt; a retry grants one more, which succeeds.
    let failed = enqueue(
        &app,
        json!({ "kind": "diag.fail", "args": { "times": 1 }, "max_attempts": 1 }),
    )
    .await;
    let row = wait_for_state(&app, failed, "discarded", 20).await;
    let listed = jobs(&app, "state=discarded&kind=diag.fail").await;
    assert_eq!(listed, vec![row.clone()]);
    assert_eq!(keys(&row), set(&JOB_FIELDS), "{row}");
    assert_eq!(
        (
            &row["queue"],
            &row["kind"],
            &row["attempt"],
            &row["max_attempts"]
        ),
        (&json!("default"), &json!("diag.fail"), &json!(1), &json!(1)),
        "{row}"
    );
    assert!(row["unique_key"].is_null(), "{row}");
    assert!(
        row["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("diag.fail")),
        "{row}"
    );
    assert!(
        time(&row["finished_at"]) >= time(&row["created_at"]),
        "{row}"
    );
    time(&row["run_at"]);
    assert!(jobs(&app, "state=completed&kind=diag.fail")
        .await
        .is_empty());
    assert!(jobs(&app, "queue=elsewhere").await.is_empty());

    let r = get(&app, "/admin/api/jobs?state=bogus").await;
    r.problem(422, "validation-failed");
    assert_eq!(r.fields(), set(&["state"]));
    get(&app, "/admin/api/jobs?limit=x")
        .await
        .problem(400, "malformed-request");

    let r = post(&app, &format!("/admin/api/jobs/{failed}/retry")).await;
    assert_eq!(r.ok(200)["id"], failed, "{}", r.body);
    assert_ne!(r.body["state"], "discarded", "{}", r.body);
    let done = wait_for_state(&app, failed, "completed", 20).await;
    assert_eq!(done["attempt"], 2, "{done}");
    let r = post(&app, &format!("/admin/api/jobs/{failed}/retry")).await;
    r.problem(409, "job-state-conflict");
    assert_eq!(job(&app, failed).await["state"], "completed");
    post(&app, "/admin/api/jobs/999999/retry")
        .await
        .problem(404, "not-found");
    post(&app, "/admin/api/jobs/999999/discard")
        .await
        .problem(404, "not-found");
    post(&app, "/admin/api/jobs/not-a-number/retry")
        .await
        .problem(400, "malformed-request");
    post(&app, "/admin/api/jobs/not-a-number/discard")
        .await
        .problem(400, "malformed-request");

    // A running job can be neither discarded nor retried.
    let sleeping = enqueue(
        &app,
        json!({ "kind": "diag.sleep", "args": { "ms": 60000 } }),
    )
    .await;
    wait_for_state(&app, sleeping, "running", 20).await;
    post(&app, &format!("/admin/api/jobs/{sleeping}/discard"))
        .await
        .problem(409, "job-state-conflict");
    post(&app, &format!("/admin/api/jobs/{sleeping}/retry"))
        .await
        .problem(409, "job-state-conflict");

    post(&app, "/admin/api/queues/default/pause").await.ok(200);
    let mut waiting = Vec::new();
    for _ in 0..3 {
        waiting.push(enqueue(&app, json!({ "kind": "diag.noop" })).await);
    }
    let newest: Vec<Value> = jobs(&app, "kind=diag.noop&limit=2").await;
    let ids: Vec<&Value> = newest.iter().map(|j| &j["id"]).collect();
    assert_eq!(
        ids,
        [&json!(waiting[2]), &json!(waiting[1])],
        "newest first, two of them"
    );
    let all = jobs(&app, "").await;
    let ids: Vec<i64> = all.iter().map(|j| j["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert_eq!(jobs(&app, "limit=1").await.len(), 1);

    let r = post(&app, &format!("/admin/api/jobs/{}/discard", waiting[0])).await;
    let row = r.ok(200);
    assert_eq!(
        (&row["id"], &row["state"]),
        (&json!(waiting[0]), &json!("discarded")),
        "{row}"
    );
    assert_eq!(row["last_error"], "discarded by an operator");
    post(&app, &format!("/admin/api/jobs/{}/discard", waiting[0]))
        .await
        .problem(409, "job-state-conflict");

    let rows = audit(&app, &format!("target=job:{failed}")).await;
    assert!(
        rows.iter()
            .all(|r| r["action"] == "job.retry" && r["actor"] == "admin-token"),
        "{rows:#?}"
    );
    assert!(
        rows.iter().any(|r| r["metadata"]["ids"] == json!([failed])),
        "the retry is audited: {rows:#?}"
    );

    // Drain: every waiting job of the queue is cancelled; the running one is not.
    let r = post(&app, "/admin/api/queues/default/drain").await;
    let cancelled = r.ok(200)["cancelled"]
        .as_i64()
        .unwrap_or_else(|| panic!("{}", r.body));
    assert_eq!(r.body["queue"], "default");
    assert!(cancelled >= 2, "{}", r.body);
    assert_eq!(
        app.db
            .scalar("SELECT count(*) FROM jobs WHERE state = 'cancelled'")
            .await,
        cancelled
    );
    for id in &waiting[1..] {
        assert_eq!(job(&app, *id).await["state"], "cancelled");
    }
    assert_eq!(job(&app, sleeping).await["state"], "running");
    let stats = get(&app, "/admin/api/queues").await.body["queues"]["default"].clone();
    assert_eq!(
        (&stats["available"], &stats["cancelled"], &stats["paused"]),
        (&json!(0), &json!(cancelled), &json!(true)),
        "{stats}"
    );
    let rows = audit(&app, "target=queue:default").await;
    assert_eq!(rows[0]["action"], "queue.drain");
    assert_eq!(rows[0]["metadata"]["cancelled"], cancelled);
    let r = post(&app, "/admin/api/queues/default/drain").await;
    assert_eq!(r.ok(200)["cancelled"], 0);
}
