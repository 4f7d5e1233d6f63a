//! The console's operations in a real browser (headless Chromium through chromedriver): a bulk
//! retry of a selection, the retry of every failed job of a queue (its cancelled jobs left
//! alone), a drain after its confirmation, the schedules page and its trigger, a billing event
//! found and replayed, each action in the audit page, the live refresh pausing while a box is
//! ticked and saying in place that the session ended, a POST without the CSRF token refused, and
//! a read-only operator who sees no action and whose posts are refused. Screenshots of each page
//! go to `console-screenshots` of the target directory.

use std::time::Duration;

use crate::billing_support::{self, config_dir, fixture, ms_in_days, revenuecat, set};
use crate::console_support::browser::Browser;

use keel_testkit::{admin, TestApp, TestDb};
use reqwest::Method;
use serde_json::json;

const ADMIN: &str = billing_support::ADMIN;

const SCHEDULES: &str = r#"
[[schedules]]
name = "digest"
cron = "30 9 * * *"
timezone = "Europe/Berlin"
kind = "diag.noop"
"#;

async fn waiting_job(app: &TestApp, queue: &str) -> i64 {
    let spec = json!({ "kind": "diag.noop", "queue": queue, "args": { "to": "ops@example.com" },
                       "run_at": "2999-01-01T00:00:00Z" });
    admin(app, Method::POST, "/admin/api/jobs", Some(&spec))
        .await
        .ok(201)["id"]
        .as_i64()
        .unwrap()
}

async fn failed_job(app: &TestApp, queue: &str) -> i64 {
    let id = waiting_job(app, queue).await;
    let path = format!("/admin/api/jobs/{id}/discard");
    admin(app, Method::POST, &path, None).await.ok(200);
    id
}

async fn in_state(app: &TestApp, id: i64, state: &str) -> bool {
    let q = format!("SELECT count(*) FROM jobs WHERE id = {id} AND state = '{state}'");
    app.db.scalar(&q).await == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_bulk_actions_drains_fires_and_replays_in_a_browser() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (_dir, config) = config_dir();
    std::fs::write(
        &config,
        format!("{}\n{SCHEDULES}", billing_support::PRODUCTS),
    )
    .unwrap();
    let app = billing_support::app(TestDb::sqlite(), &config)
        .env("ADMIN_READONLY_USER_IDS", "u-reader")
        .spawn()
        .await;
    let cancelled = waiting_job(&app, "mail").await;
    app.services().queue.drain("mail", "setup").await.unwrap();
    let (a, b, c) = (
        failed_job(&app, "mail").await,
        failed_job(&app, "mail").await,
        failed_job(&app, "mail").await,
    );
    let (w1, w2) = (
        waiting_job(&app, "outbox").await,
        waiting_job(&app, "outbox").await,
    );
    let event = fixture("revenuecat", "initial_purchase");
    let event = set(event, "/event/expiration_at_ms", json!(ms_in_days(7)));
    let event = set(event, "/event/id", json!("evt-browser-1"));
    assert_eq!(revenuecat(&app, &event).await.status, 200);

    browser.goto(&app.url("/admin/login")).await;
    browser.fill("#token", ADMIN).await;
    browser.click("form.signin button").await;
    browser.wait_at("/admin").await;

    // A selection: two boxes ticked pause the live refresh; "Retry selected" retries them.
    browser.goto(&app.url("/admin/jobs?queue=mail")).await;
    browser
        .wait_text("#live-status", "Live", Duration::from_secs(10))
        .await;
    for id in [a, b] {
        browser
            .click(&format!("input[name=id][value='{id}']"))
            .await;
    }
    browser
        .wait_text(
            "#live-status",
            "paused while a box is ticked",
            Duration::from_secs(10),
        )
        .await;
    browser.screenshot("jobs-selection").await;
    browser
        .click("#selection button[name=action][value=retry]")
        .await;
    browser.wait_for("Retried 2 jobs.").await;
    assert!(in_state(&app, a, "available").await && in_state(&app, b, "available").await);
    assert!(
        in_state(&app, c, "discarded").await,
        "an unticked job stays"
    );

    // Every failed job of the queue, after a confirmation with the count; cancelled ones stay.
    failed_job(&app, "mail").await;
    browser.goto(&app.url("/admin/jobs?queue=mail")).await;
    browser
        .click("form[action='/admin/jobs/bulk'] input[name=state][value=failed] ~ button")
        .await;
    browser.wait_for("class=\"count\"").await;
    assert_eq!(browser.text_of("strong.count").await, "2");
    browser.screenshot("bulk-confirm").await;
    browser.click("form input[name=confirm] ~ button").await;
    browser.wait_for("Retried 2 jobs.").await;
    assert!(in_state(&app, c, "available").await);
    assert!(
        in_state(&app, cancelled, "cancelled").await,
        "a cancelled job is not a failed one"
    );

    // A drain asks first, with the count, then cancels the queue's waiting jobs.
    browser.goto(&app.url("/admin")).await;
    browser
        .click("form[action='/admin/queues/outbox/drain'] button")
        .await;
    browser.wait_for("Drain outbox?").await;
    assert_eq!(browser.text_of("strong.count").await, "2");
    browser.screenshot("drain-confirm").await;
    assert!(
        in_state(&app, w1, "scheduled").await,
        "asking changes nothing"
    );
    browser.click("form input[name=confirm] ~ button").await;
    browser
        .wait_for("Drained outbox: cancelled 2 waiting jobs.")
        .await;
    assert!(in_state(&app, w1, "cancelled").await && in_state(&app, w2, "cancelled").await);
    browser.screenshot("overview-drained").await;

    // Schedules: cron, zone, next run; "Run now" fires and the page then shows the last run.
    browser.goto(&app.url("/admin/schedules")).await;
    let services = app.services();
    let next = services
        .scheduler
        .get("digest")
        .unwrap()
        .cron
        .next_after(app.clock().now())
        .unwrap();
    let row = browser.text_of("#schedule-digest").await;
    for text in [
        "30 9 * * *",
        "Europe/Berlin",
        &next.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        "never",
    ] {
        assert!(row.contains(text), "{text:?} not in {row}");
    }
    browser
        .click("form[action='/admin/schedules/digest/trigger'] button")
        .await;
    browser.wait_for("Job ").await;
    let job = browser.path().await;
    let job_id = job.strip_prefix("/admin/jobs/").unwrap().to_string();
    browser.goto(&app.url("/admin/schedules")).await;
    let row = browser.text_of("#schedule-digest td.last").await;
    assert!(row.contains(&format!("job {job_id}")), "{row}");
    browser.screenshot("schedules").await;

    // A billing event found by its id, shown without its payload, and replayed.
    browser.goto(&app.url("/admin/billing")).await;
    browser.fill("input[name=event_id]", "evt-browser-1").await;
    browser.click("form.filters button").await;
    browser.wait_for("<code>evt-browser-1</code>").await;
    let page = browser.text().await;
    for secret in [
        "firstlast@gmail.com",
        "123456789012345",
        billing_support::RC_SECRET,
    ] {
        assert!(!page.contains(secret), "the page shows {secret:?}");
    }
    browser.screenshot("billing").await;
    browser
        .click("form[action='/admin/billing/replay'] button")
        .await;
    browser
        .wait_for("Replayed <code>evt-browser-1</code>")
        .await;

    // A POST without the CSRF token is refused and changes nothing.
    let status = browser.post_from_page("/admin/queues/mail/pause", "").await;
    assert_eq!(status, 403);
    assert!(!app
        .services()
        .flags
        .list()
        .await
        .unwrap()
        .iter()
        .any(|f| f.name == "queue:mail"));

    browser.goto(&app.url("/admin/audit")).await;
    let audit = browser.text().await;
    for action in [
        "job.retry",
        "queue.drain",
        "schedule.trigger",
        "billing.replay",
        "evt-browser-1",
    ] {
        assert!(audit.contains(action), "{action} not in the audit page");
    }
    assert_eq!(
        app.db
            .scalar("SELECT count(*) FROM audit_log WHERE actor = 'admin-token' AND action IN ('job.retry', 'queue.drain', 'schedule.trigger', 'billing.replay') AND (target IS NULL OR target NOT LIKE 'job:%')")
            .await,
        5,
        "two retries, a drain, a trigger and a replay, by the session's actor"
    );
    browser.screenshot("audit-operations").await;

    // The live refresh: a new job appears without a reload; pausing holds; a lost session is
    // said in place while the list stays.
    browser.goto(&app.url("/admin/jobs?queue=live")).await;
    browser.click("h1").await;
    let fresh = waiting_job(&app, "live").await;
    browser
        .wait_text("#live", &fresh.to_string(), Duration::from_secs(30))
        .await;
    browser.click("#live-toggle").await;
    browser
        .wait_text(
            "#live-status",
            "Live updates paused.",
            Duration::from_secs(5),
        )
        .await;
    browser.screenshot("live-paused").await;
    browser.click("#live-toggle").await;
    app.db.execute("DELETE FROM console_sessions").await;
    browser
        .wait_text(
            "#live-status",
            "The session has ended",
            Duration::from_secs(30),
        )
        .await;
    assert!(browser.text_of("#live").await.contains(&fresh.to_string()));
    browser.screenshot("live-error").await;

    // A read-only operator sees no action and every change they post is refused.
    browser.goto(&app.url("/admin/login")).await;
    browser
        .fill("#token", &billing_support::token("u-reader"))
        .await;
    browser.click("form.signin button").await;
    browser.wait_at("/admin").await;
    for path in [
        "/admin",
        "/admin/jobs?queue=mail",
        "/admin/schedules",
        "/admin/billing",
    ] {
        browser.goto(&app.url(path)).await;
        browser.wait_for("(read-only)").await;
        let posts = browser
            .client
            .find_all(fantoccini::Locator::Css("form[method=post]"))
            .await
            .unwrap();
        assert_eq!(posts.len(), 1, "{path}: only the sign-out form");
        assert!(!browser.has("input[type=checkbox]").await, "{path}");
    }
    browser.screenshot("read-only-jobs").await;
    let csrf = browser.attr("nav form input[name=csrf]", "value").await;
    for (path, fields) in [
        ("/admin/jobs/bulk", "action=retry&queue=mail&confirm=yes"),
        ("/admin/jobs/selection", &format!("action=discard&id={c}")),
        ("/admin/queues/mail/drain", "confirm=yes"),
        ("/admin/schedules/digest/trigger", ""),
        (
            "/admin/billing/replay",
            "provider=revenuecat&event_id=evt-browser-1",
        ),
    ] {
        let body = format!("csrf={csrf}&{fields}");
        assert_eq!(
            browser.post_from_page(path, &body).await,
            403,
            "{path} from a read-only operator"
        );
    }
    assert!(in_state(&app, c, "available").await);
    assert_eq!(
        app.db
            .scalar("SELECT count(*) FROM audit_log WHERE actor = 'user:u-reader'")
            .await,
        0
    );
    browser.close().await;
}
