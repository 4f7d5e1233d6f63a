//! The admin schedule routes and the external scheduler trigger: listing, triggering, idempotency per period or key.

use super::*;

keel_testkit::engine_test!(admin_schedules_list_and_trigger);
async fn admin_schedules_list_and_trigger(db: TestDb) {
    let (app, _dir) = spawn(db, &[("ADMIN_TOKEN", ADMIN)], true).await;
    let started = Utc::now();
    let r = get(&app, "/admin/api/schedules").await;
    let list = r.ok(200)["schedules"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", r.body))
        .clone();
    let find = |list: &[Value], name: &str| {
        list.iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name}: {list:#?}"))
    };
    let nightly = find(&list, "nightly");
    let prune = find(&list, "jobs.prune");
    for s in [&nightly, &prune] {
        assert_eq!(
            keys(s),
            set(&[
                "name",
                "cron",
                "timezone",
                "kind",
                "last_fired_at",
                "next_fire_at"
            ]),
            "{s}"
        );
    }
    assert_eq!(
        (&nightly["cron"], &nightly["kind"]),
        (&json!("0 3 * * *"), &json!("diag.noop"))
    );
    assert_eq!(
        (&prune["cron"], &prune["kind"]),
        (&json!("0 * * * *"), &json!("jobs.prune"))
    );
    // SPEC §7: the other built-in schedules and their crons.
    for (name, cron) in [
        ("retention.events", "0 2 * * *"),
        ("privacy.maintenance", "0 3 * * 0"),
        ("storage.cleanup", "15 * * * *"),
    ] {
        let s = find(&list, name);
        assert_eq!(
            (&s["cron"], &s["kind"]),
            (&json!(cron), &json!(name)),
            "{s}"
        );
    }
    let next = time(&nightly["next_fire_at"]);
    assert!(
        next > started - chrono::Duration::seconds(1)
            && next <= started + chrono::Duration::days(1),
        "{nightly}"
    );
    assert_eq!(
        (next.hour(), next.minute(), next.second()),
        (3, 0, 0),
        "{nightly}"
    );
    let next = time(&prune["next_fire_at"]);
    assert!(
        next.minute() == 0 && next <= started + chrono::Duration::hours(1),
        "{prune}"
    );
    if !nightly_may_fire_itself() {
        assert!(nightly["last_fired_at"].is_null(), "{nightly}");
    }

    let r = post(&app, "/admin/api/schedules/nightly/trigger").await;
    let fired = r.ok(202).clone();
    assert_eq!(keys(&fired), set(&["job_id", "deduplicated"]));
    if !nightly_may_fire_itself() {
        assert_eq!(fired["deduplicated"], false, "{fired}");
    }
    let id = fired["job_id"].as_i64().unwrap();
    let r = post(&app, "/admin/api/schedules/nightly/trigger").await;
    assert_eq!(r.ok(202), &json!({ "job_id": id, "deduplicated": true }));
    let row = job(&app, id).await;
    assert_eq!(row["kind"], "diag.noop");
    assert!(
        row["unique_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("schedule:nightly:")),
        "{row}"
    );

    let r = get(&app, "/admin/api/schedules").await;
    let nightly = find(r.body["schedules"].as_array().unwrap(), "nightly");
    let last = time(&nightly["last_fired_at"]);
    assert!(
        last <= Utc::now() && last > Utc::now() - chrono::Duration::days(1),
        "{nightly}"
    );

    let r = post(&app, "/admin/api/schedules/nope/trigger").await;
    r.problem(404, "not-found");
    let rows = audit(&app, "target=schedule:nightly").await;
    assert!(
        !rows.is_empty()
            && rows
                .iter()
                .all(|r| r["action"] == "schedule.trigger" && r["actor"] == "admin-token"),
        "{rows:#?}"
    );
    assert_eq!(rows.last().unwrap()["metadata"]["job_id"], id);

    // Without SCHEDULER_SECRET_KEY the external trigger route does not exist.
    for token in [None, Some(ADMIN), Some(SECRET)] {
        let mut builder = request(&app, Method::POST, "/v1/scheduler/nightly/trigger");
        if let Some(token) = token {
            builder = builder.bearer_auth(token);
        }
        send(builder).await.problem(404, "not-found");
    }
}

keel_testkit::engine_test!(external_scheduler_trigger);
async fn external_scheduler_trigger(db: TestDb) {
    let (app, _dir) = spawn(
        db,
        &[("ADMIN_TOKEN", ADMIN), ("SCHEDULER_SECRET_KEY", SECRET)],
        true,
    )
    .await;
    let trigger = |name: &str, auth: Option<&str>, key: Option<&str>| {
        let mut builder = request(&app, Method::POST, &format!("/v1/scheduler/{name}/trigger"));
        if let Some(auth) = auth {
            builder = builder.header("authorization", auth.to_string());
        }
        if let Some(key) = key {
            builder = builder.header("idempotency-key", key.to_string());
        }
        send(builder)
    };
    let bearer = format!("Bearer {SECRET}");
    let auth = Some(bearer.as_str());
    let wrong = format!("Bearer {SECRET}0");
    let admin_token = format!("Bearer {ADMIN}");
    for bad in [
        None,
        Some("Bearer"),
        Some(wrong.as_str()),
        Some(admin_token.as_str()),
        Some(SECRET),
    ] {
        trigger("nightly", bad, None).await.unauthorized();
        trigger("unknown", bad, None).await.unauthorized();
    }
    assert_eq!(
        app.db
            .scalar("SELECT count(*) FROM jobs WHERE kind = 'diag.noop'")
            .await,
        0
    );

    let first = trigger("nightly", auth, None).await.ok(202).clone();
    assert_eq!(keys(&first), set(&["job_id", "deduplicated"]));
    if !nightly_may_fire_itself() {
        assert_eq!(first["deduplicated"], false, "{first}");
    }
    let period = first["job_id"].as_i64().unwrap();
    assert_eq!(
        trigger("nightly", auth, None).await.ok(202),
        &json!({ "job_id": period, "deduplicated": true })
    );
    // The admin trigger fires the same period.
    assert_eq!(
        post(&app, "/admin/api/schedules/nightly/trigger")
            .await
            .ok(202),
        &json!({ "job_id": period, "deduplicated": true })
    );

    let k1 = trigger("nightly", auth, Some("k1")).await.ok(202).clone();
    assert_eq!(k1["deduplicated"], false, "{k1}");
    let k1_id = k1["job_id"].as_i64().unwrap();
    assert_ne!(k1_id, period);
    assert_eq!(
        trigger("nightly", auth, Some("k1")).await.ok(202),
        &json!({ "job_id": k1_id, "deduplicated": true })
    );
    let k2 = trigger("nightly", auth, Some("k2")).await.ok(202).clone();
    assert_eq!(k2["deduplicated"], false, "{k2}");
    let k2_id = k2["job_id"].as_i64().unwrap();
    assert!(k2_id != k1_id && k2_id != period, "{k2}");
    assert_eq!(job(&app, k1_id).await["unique_key"], "schedule:nightly@k1");
    assert_eq!(
        app.db
            .scalar("SELECT count(*) FROM jobs WHERE kind = 'diag.noop'")
            .await,
        3
    );
    let long = "k".repeat(201);
    trigger("nightly", auth, Some(long.as_str()))
        .await
        .problem(400, "malformed-request");
    trigger("unknown", auth, None)
        .await
        .problem(404, "not-found");
    trigger("unknown", auth, Some("k1"))
        .await
        .problem(404, "not-found");
    let rows = audit(&app, "target=schedule:nightly").await;
    assert!(
        rows.iter()
            .any(|r| r["actor"] == "scheduler-trigger" && r["metadata"]["job_id"] == k2_id),
        "{rows:#?}"
    );

    set_flag(&app, "enqueue", false).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let refused = loop {
        let r = trigger("nightly", auth, Some("while-off")).await;
        if r.status != 202 {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "triggers still accepted 5 s after the switch"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    refused.problem(503, "enqueue-disabled");
    trigger("nightly", auth, Some("k3"))
        .await
        .problem(503, "enqueue-disabled");
    post(&app, "/admin/api/schedules/nightly/trigger")
        .await
        .problem(503, "enqueue-disabled");
    trigger("nightly", None, None).await.unauthorized();
    trigger("unknown", auth, None)
        .await
        .problem(404, "not-found");
}

keel_testkit::engine_test!(a_keyed_trigger_is_a_firing_of_its_schedule);
async fn a_keyed_trigger_is_a_firing_of_its_schedule(db: TestDb) {
    let (app, _dir) = spawn(
        db,
        &[("ADMIN_TOKEN", ADMIN), ("SCHEDULER_SECRET_KEY", SECRET)],
        true,
    )
    .await;
    let r = send(
        request(&app, Method::POST, "/v1/scheduler/nightly/trigger")
            .bearer_auth(SECRET)
            .header("idempotency-key", "deploy-42"),
    )
    .await;
    let id = r.ok(202)["job_id"].as_i64().unwrap();
    assert_eq!(job(&app, id).await["kind"], "diag.noop");
    let r = get(&app, "/admin/api/schedules").await;
    let list = r.ok(200)["schedules"].as_array().unwrap().clone();
    let nightly = list.iter().find(|s| s["name"] == "nightly").unwrap();
    // GET /admin/api/schedules reports "last firing": the keyed trigger above fired nightly.
    assert!(
        !nightly["last_fired_at"].is_null(),
        "a keyed trigger fired nightly but it is not listed as fired: {nightly}"
    );
    let last = time(&nightly["last_fired_at"]);
    assert!(last > Utc::now() - chrono::Duration::days(1), "{nightly}");
}
