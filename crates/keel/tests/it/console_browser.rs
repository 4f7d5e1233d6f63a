//! The operations console in a real browser (headless Chromium through chromedriver): sign in,
//! retry a failed job, retry every failed job of a queue (after its confirmation), switch a kill switch, grant an
//! entitlement, and find each action in the audit page. Each page's screenshot is saved in
//! `console-screenshots` of the target directory.

use crate::console_support::browser::Browser;
use crate::console_support::ADMIN;

use keel_testkit::{admin, TestApp, TestDb};
use reqwest::Method;
use serde_json::json;

async fn failed_job(app: &TestApp, queue: &str, n: i64) -> i64 {
    let spec = json!({ "kind": "diag.noop", "queue": queue, "args": { "invoice": n },
                       "run_at": "2999-01-01T00:00:00Z" });
    let id = admin(app, Method::POST, "/admin/api/jobs", Some(&spec))
        .await
        .ok(201)["id"]
        .as_i64()
        .unwrap();
    discard(app, id).await;
    id
}

async fn discard(app: &TestApp, id: i64) {
    let path = format!("/admin/api/jobs/{id}/discard");
    admin(app, Method::POST, &path, None).await.ok(200);
}

async fn available(app: &TestApp, id: i64) -> bool {
    let q = format!("SELECT count(*) FROM jobs WHERE id = {id} AND state = 'available'");
    app.db.scalar(&q).await == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_works_through_the_console_in_a_browser() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = TestApp::builder(TestDb::sqlite())
        .env("ADMIN_TOKEN", ADMIN)
        .spawn()
        .await;
    let (a, b) = (
        failed_job(&app, "mail", 1).await,
        failed_job(&app, "mail", 2).await,
    );
    let other = failed_job(&app, "billing", 3).await;

    browser.goto(&app.url("/admin")).await;
    assert_eq!(browser.path().await, "/admin/login");
    browser.screenshot("sign-in").await;
    browser.fill("#token", ADMIN).await;
    browser.click("form.signin button").await;
    browser.wait_at("/admin").await;
    browser.wait_for("Failed jobs").await;
    browser.screenshot("overview").await;

    browser.goto(&app.url(&format!("/admin/jobs/{a}"))).await;
    let detail = browser.text().await;
    assert!(
        detail.contains("invoice") && detail.contains("discarded"),
        "{detail}"
    );
    browser.screenshot("job").await;
    browser
        .click(&format!("form[action='/admin/jobs/{a}/retry'] button"))
        .await;
    browser.wait_for("state-available").await;
    assert_eq!(browser.path().await, format!("/admin/jobs/{a}"));
    assert!(available(&app, a).await, "the job was retried");
    assert!(
        !browser
            .has(&format!("form[action='/admin/jobs/{a}/retry']"))
            .await
    );

    discard(&app, a).await;
    browser.goto(&app.url("/admin/jobs?queue=mail")).await;
    browser.screenshot("jobs").await;
    browser
        .click("form[action='/admin/jobs/bulk'] input[name=state][value=failed] ~ button")
        .await;
    browser.wait_for("class=\"count\"").await;
    browser.click("form input[name=confirm] ~ button").await;
    browser.wait_for("Retried 2 jobs.").await;
    assert!(
        available(&app, a).await && available(&app, b).await,
        "the queue's failed jobs"
    );
    assert!(!available(&app, other).await, "another queue's job stays");

    browser.goto(&app.url("/admin/flags")).await;
    browser
        .click("form[action='/admin/flags/workers'] button")
        .await;
    browser.wait_for("Switch on").await;
    browser.screenshot("kill-switches").await;
    let flags = app.services().flags.list().await.unwrap();
    assert!(
        flags.iter().any(|f| f.name == "workers" && !f.enabled),
        "{flags:?}"
    );

    browser.goto(&app.url("/admin/users?id=u-7")).await;
    browser
        .fill(
            "form[action='/admin/users/u-7/grant'] input[name=entitlement]",
            "pro",
        )
        .await;
    browser
        .fill(
            "form[action='/admin/users/u-7/grant'] input[name=reason]",
            "goodwill",
        )
        .await;
    browser
        .click("form[action='/admin/users/u-7/grant'] button")
        .await;
    browser.wait_for("<code>pro</code>").await;
    browser.screenshot("user").await;

    browser.goto(&app.url("/admin/audit")).await;
    let audit = browser.text().await;
    for action in ["job.retry", "flag.set", "entitlement.grant", "goodwill"] {
        assert!(audit.contains(action), "{action} not in the audit page");
    }
    browser.screenshot("audit").await;

    browser.click("nav form button").await;
    browser.wait_at("/admin/login").await;
    browser.close().await;
}
