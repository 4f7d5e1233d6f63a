//! Jobs filtered by an argument, `key=value`, on both engines: the admin API's list, the queue's
//! retry and discard, and the console's list and bulk actions (docs/CONSOLE.md "Jobs",
//! docs/HTTP.md "Admin API"). A string matches as it is, a number or boolean as JSON writes it;
//! nested values, `null` and prefixes never match, and quotes in the value are only text.

use std::collections::BTreeSet;

use crate::console_support::{Operator, ADMIN};

use keel::jobs::{ArgMatch, JobFilter, JobState};
use keel_testkit::{admin, TestApp, TestDb};
use reqwest::Method;
use serde_json::{json, Value};

/// A job waiting until 2999 with `args`, so nothing runs it during the test.
async fn waiting(app: &TestApp, args: Value) -> i64 {
    let spec = json!({ "kind": "diag.noop", "queue": "args", "args": args,
                       "run_at": "2999-01-01T00:00:00Z" });
    let r = admin(app, Method::POST, "/admin/api/jobs", Some(&spec)).await;
    r.ok(201)["id"].as_i64().expect("an id")
}

async fn listed(app: &TestApp, arg: &str) -> BTreeSet<i64> {
    let path = format!(
        "/admin/api/jobs?queue=args&arg={}",
        keel::percent::encode(arg)
    );
    let r = admin(app, Method::GET, &path, None).await;
    let rows = r.ok(200).as_array().expect("a list").clone();
    rows.iter()
        .map(|row| row["id"].as_i64().expect("an id"))
        .collect()
}

fn ids<const N: usize>(ids: [i64; N]) -> BTreeSet<i64> {
    ids.into_iter().collect()
}

async fn state(app: &TestApp, id: i64) -> JobState {
    let filter = JobFilter {
        id: Some(id),
        limit: 1,
        ..Default::default()
    };
    app.services().queue.list(&filter).await.expect("list")[0].state
}

keel_testkit::engine_test!(jobs_are_listed_retried_and_discarded_by_an_argument);
async fn jobs_are_listed_retried_and_discarded_by_an_argument(db: TestDb) {
    let app = TestApp::builder(db).env("ADMIN_TOKEN", ADMIN).spawn().await;
    let u1 = waiting(
        &app,
        json!({ "user_id": "u_1", "count": 3, "dry_run": true }),
    )
    .await;
    let u1b = waiting(&app, json!({ "user_id": "u_1", "count": 3.5 })).await;
    let u12 = waiting(&app, json!({ "user_id": "u_12", "dry_run": false })).await;
    let nested = waiting(&app, json!({ "user": { "user_id": "u_1" }, "count": "3" })).await;
    let quoted = waiting(&app, json!({ "note": "it's 100% done", "empty": "" })).await;
    let null = waiting(&app, json!({ "user_id": null, "list": ["u_1"] })).await;

    assert_eq!(listed(&app, "user_id=u_1").await, ids([u1, u1b]));
    assert_eq!(listed(&app, "user_id=u_12").await, ids([u12]));
    assert_eq!(listed(&app, "user_id=u_").await, ids([]), "no prefix match");
    assert_eq!(listed(&app, "count=3").await, ids([u1, nested]));
    assert_eq!(listed(&app, "count=3.5").await, ids([u1b]));
    assert_eq!(listed(&app, "dry_run=true").await, ids([u1]));
    assert_eq!(listed(&app, "dry_run=false").await, ids([u12]));
    assert_eq!(listed(&app, "note=it's 100% done").await, ids([quoted]));
    assert_eq!(listed(&app, "empty=").await, ids([quoted]));
    assert_eq!(
        listed(&app, "user_id=null").await,
        ids([]),
        "null never matches"
    );
    assert_eq!(
        listed(&app, "list=u_1").await,
        ids([]),
        "arrays never match"
    );
    assert_eq!(
        listed(&app, "user=u_1").await,
        ids([]),
        "objects never match"
    );
    let every = listed(&app, "").await;
    assert!(
        every.len() == 6 && every.contains(&null),
        "an empty filter is no filter"
    );

    for bad in ["user_id", "=u_1", "a.b=1", "a'b=1", "é=1"] {
        let path = format!("/admin/api/jobs?arg={}", keel::percent::encode(bad));
        let r = admin(&app, Method::GET, &path, None).await;
        r.problem(422, "validation-failed");
        assert_eq!(r.fields(), ["arg".to_string()].into(), "{bad}: {}", r.text);
    }

    // The queue's actions take the filter too: only the matching jobs change.
    let queue = &app.services().queue;
    let of_u1 = JobFilter {
        arg: Some(ArgMatch::parse("user_id=u_1").expect("valid")),
        limit: 100,
        ..Default::default()
    };
    let discarded: BTreeSet<i64> = queue
        .discard(&of_u1, "tests")
        .await
        .expect("discard")
        .into_iter()
        .collect();
    assert_eq!(discarded, ids([u1, u1b]));
    assert_eq!(state(&app, u12).await, JobState::Scheduled);
    let retried: BTreeSet<i64> = queue
        .retry(&of_u1, "tests")
        .await
        .expect("retry")
        .into_iter()
        .collect();
    assert_eq!(retried, ids([u1, u1b]));
    assert_eq!(state(&app, nested).await, JobState::Scheduled);
}

keel_testkit::engine_test!(the_console_filters_and_acts_by_an_argument);
async fn the_console_filters_and_acts_by_an_argument(db: TestDb) {
    let app = TestApp::builder(db).env("ADMIN_TOKEN", ADMIN).spawn().await;
    let mut op = Operator::new(&app);
    op.sign_in(ADMIN).await;
    let a = waiting(&app, json!({ "user_id": "u_7" })).await;
    let b = waiting(&app, json!({ "user_id": "u_7", "n": 1 })).await;
    let other = waiting(&app, json!({ "user_id": "u_8" })).await;

    let page = op.get("/admin/jobs?arg=user_id%3Du_7").await;
    assert_eq!(page.status, 200, "{}", page.text);
    for id in [a, b] {
        assert!(
            page.text.contains(&format!(r#"href="/admin/jobs/{id}""#)),
            "{id}: {}",
            page.text
        );
    }
    assert!(
        !page
            .text
            .contains(&format!(r#"href="/admin/jobs/{other}""#)),
        "{}",
        page.text
    );
    assert!(
        page.text
            .contains(r#"name="arg" placeholder="key=value" value="user_id=u_7""#),
        "the filter is shown as written: {}",
        page.text
    );

    let bad = op.get("/admin/jobs?arg=user_id").await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert!(
        bad.text.contains("The argument filter cannot be read"),
        "{}",
        bad.text
    );

    let discard = [("action", "discard"), ("arg", "user_id=u_7")];
    let ask = op
        .act(
            "/admin/jobs?arg=user_id%3Du_7",
            "/admin/jobs/bulk",
            &discard,
        )
        .await;
    assert_eq!(ask.status, 200, "{}", ask.text);
    assert!(
        ask.text.contains(r#"<strong class="count">2</strong>"#),
        "{}",
        ask.text
    );
    assert!(ask.text.contains("argument user_id=u_7"), "{}", ask.text);
    let mut yes = discard.to_vec();
    yes.push(("confirm", "yes"));
    let r = op.act("/admin/jobs", "/admin/jobs/bulk", &yes).await;
    assert_eq!(
        (r.status, r.header("location")),
        (303, "/admin/jobs?arg=user_id%3Du_7&done=discard&changed=2"),
        "{}",
        r.text
    );
    assert_eq!(state(&app, a).await, JobState::Discarded);
    assert_eq!(state(&app, b).await, JobState::Discarded);
    assert_eq!(state(&app, other).await, JobState::Scheduled);
}
