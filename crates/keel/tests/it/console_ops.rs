//! The console's operations on many jobs, queues, schedules and billing events over real HTTP on
//! both engines (docs/CONSOLE.md): actions on a selection and on a whole filter (with the
//! confirmation that says how many, the cap, and only the states an action applies to), the
//! drain of a queue, the schedules page and its trigger, and billing events found and replayed
//! without their payloads. Each change is found in the audit log with the session's actor.

use crate::billing_support::{self, config_dir, fixture, ms_in_days, revenuecat, set};
use crate::console_support::{Operator, Page, ADMIN};

use keel::jobs::{JobFilter, JobSpec, JobState};
use keel_testkit::{admin, TestApp, TestDb};
use reqwest::Method;
use serde_json::json;

async fn console(db: TestDb) -> TestApp {
    TestApp::builder(db).env("ADMIN_TOKEN", ADMIN).spawn().await
}

/// A job in `queue` that waits until 2999, so nothing runs it during the test.
async fn waiting_job(app: &TestApp, queue: &str) -> i64 {
    let spec = json!({ "kind": "diag.noop", "queue": queue, "run_at": "2999-01-01T00:00:00Z" });
    let r = admin(app, Method::POST, "/admin/api/jobs", Some(&spec)).await;
    r.ok(201)["id"].as_i64().unwrap()
}

async fn discarded_job(app: &TestApp, queue: &str) -> i64 {
    let id = waiting_job(app, queue).await;
    let path = format!("/admin/api/jobs/{id}/discard");
    admin(app, Method::POST, &path, None).await.ok(200);
    id
}

async fn state(app: &TestApp, id: i64) -> JobState {
    let filter = JobFilter {
        id: Some(id),
        limit: 1,
        ..Default::default()
    };
    app.services().queue.list(&filter).await.unwrap()[0].state
}

fn refused(page: &Page, status: u16, why: &str) {
    assert_eq!(page.status, status, "{}", page.text);
    assert!(page.text.contains(why), "{why:?} not in {}", page.text);
}

fn count(page: &Page, needle: &str) -> usize {
    page.text.matches(needle).count()
}

keel_testkit::engine_test!(jobs_are_changed_by_selection_and_by_filter_within_limits);
async fn jobs_are_changed_by_selection_and_by_filter_within_limits(db: TestDb) {
    let app = console(db).await;
    let mut op = Operator::new(&app);
    op.sign_in(ADMIN).await;
    let cancelled = waiting_job(&app, "mail").await;
    app.services().queue.drain("mail", "setup").await.unwrap();
    let (a, b) = (
        discarded_job(&app, "mail").await,
        discarded_job(&app, "mail").await,
    );
    let waiting = waiting_job(&app, "mail").await;
    let elsewhere = discarded_job(&app, "billing").await;

    let list = op.get("/admin/jobs?queue=mail").await;
    for id in [cancelled, a, b, waiting] {
        let box_of = format!(r#"name="id" value="{id}""#);
        assert!(list.text.contains(&box_of), "{id}: {}", list.text);
    }
    assert!(
        list.text.contains("at most 1,000 jobs per action"),
        "{}",
        list.text
    );

    // A selection: each job changes only where its state allows the action.
    let (a_id, waiting_id) = (a.to_string(), waiting.to_string());
    let picked = [
        ("action", "retry"),
        ("queue", "mail"),
        ("id", a_id.as_str()),
        ("id", waiting_id.as_str()),
    ];
    let r = op
        .act("/admin/jobs?queue=mail", "/admin/jobs/selection", &picked)
        .await;
    let back = "/admin/jobs?queue=mail&done=retry&changed=1&skipped=1";
    assert_eq!((r.status, r.header("location")), (303, back), "{}", r.text);
    assert_eq!(state(&app, a).await, JobState::Available);
    assert_eq!(state(&app, waiting).await, JobState::Scheduled);
    let notice = op.get(back).await;
    assert!(
        notice.text.contains("Retried 1 job.")
            && notice
                .text
                .contains("1 selected job was in a state retry does not apply to"),
        "{}",
        notice.text
    );
    let none = op
        .act(
            "/admin/jobs",
            "/admin/jobs/selection",
            &[("action", "retry")],
        )
        .await;
    refused(&none, 422, "No job was selected");
    let bad = op
        .act(
            "/admin/jobs",
            "/admin/jobs/selection",
            &[("action", "explode"), ("id", a_id.as_str())],
        )
        .await;
    refused(&bad, 400, "could not be read");
    let discard_a = [("action", "discard"), ("id", a_id.as_str())];
    let r = op
        .act("/admin/jobs", "/admin/jobs/selection", &discard_a)
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(state(&app, a).await, JobState::Discarded);

    // Retry every failed job of a queue: asks first, with the count; cancelled jobs stay.
    let failed = [("action", "retry"), ("queue", "mail"), ("state", "failed")];
    let ask = op
        .act("/admin/jobs?queue=mail", "/admin/jobs/bulk", &failed)
        .await;
    assert_eq!(ask.status, 200, "{}", ask.text);
    assert!(
        ask.text.contains(r#"<strong class="count">2</strong>"#),
        "{}",
        ask.text
    );
    assert!(ask.text.contains(r#"name="confirm" value="yes""#));
    assert_eq!(
        state(&app, a).await,
        JobState::Discarded,
        "asking changes nothing"
    );
    let mut yes = failed.to_vec();
    yes.push(("confirm", "yes"));
    let r = op
        .act("/admin/jobs?queue=mail", "/admin/jobs/bulk", &yes)
        .await;
    assert_eq!(
        (r.status, r.header("location")),
        (
            303,
            "/admin/jobs?queue=mail&state=failed&done=retry&changed=2"
        )
    );
    assert_eq!(state(&app, a).await, JobState::Available);
    assert_eq!(state(&app, b).await, JobState::Available);
    assert_eq!(state(&app, cancelled).await, JobState::Cancelled);
    assert_eq!(state(&app, elsewhere).await, JobState::Discarded);

    // An action whose states the filter excludes is neither offered nor accepted.
    let running = op.get("/admin/jobs?state=running").await;
    assert_eq!(count(&running, r#"action="/admin/jobs/bulk""#), 0);
    let completed = op.get("/admin/jobs?state=cancelled").await;
    assert!(completed.text.contains("Retry all matching"));
    assert!(!completed.text.contains("Discard all matching"));
    let r = op
        .act(
            "/admin/jobs",
            "/admin/jobs/bulk",
            &[
                ("action", "discard"),
                ("state", "cancelled"),
                ("confirm", "yes"),
            ],
        )
        .await;
    refused(
        &r,
        409,
        "applies only to scheduled, available, retryable jobs",
    );
    assert_eq!(state(&app, cancelled).await, JobState::Cancelled);

    // More than the cap: the page says so, and one action changes 1,000 jobs.
    let later = chrono::Utc::now() + chrono::Duration::days(3650);
    let specs: Vec<JobSpec> = (0..1001)
        .map(|_| {
            JobSpec::new("diag.noop", json!({}))
                .queue("bulk")
                .run_at(later)
        })
        .collect();
    app.services().queue.enqueue_many(&specs).await.unwrap();
    let all_of_bulk = [("action", "discard"), ("queue", "bulk")];
    let ask = op
        .act("/admin/jobs", "/admin/jobs/bulk", &all_of_bulk)
        .await;
    assert!(
        ask.text.contains("More than 1,000 jobs match"),
        "{}",
        ask.text
    );
    let mut yes = all_of_bulk.to_vec();
    yes.push(("confirm", "yes"));
    let r = op.act("/admin/jobs", "/admin/jobs/bulk", &yes).await;
    assert_eq!(
        r.header("location"),
        "/admin/jobs?queue=bulk&done=discard&changed=1000"
    );
    let left = "SELECT count(*) FROM jobs WHERE queue = 'bulk' AND state = 'scheduled'";
    assert_eq!(app.db.scalar(left).await, 1);

    let audit = op.get("/admin/audit").await;
    for (action, target) in [("job.retry", "queue:mail"), ("job.discard", "queue:bulk")] {
        assert!(
            audit
                .text
                .contains(&format!("<code>{action}</code></td><td>{target}</td>")),
            "{action} on {target}: {}",
            audit.text
        );
    }
    let by_console = "SELECT count(*) FROM audit_log WHERE actor = 'admin-token'
                      AND action IN ('job.retry', 'job.discard')
                      AND (target IS NULL OR target NOT LIKE 'job:%')";
    assert_eq!(
        app.db.scalar(by_console).await,
        4,
        "a selection retry and discard, a filter retry and discard"
    );
}

keel_testkit::engine_test!(a_queue_is_drained_after_a_confirmation);
async fn a_queue_is_drained_after_a_confirmation(db: TestDb) {
    let app = console(db).await;
    let mut op = Operator::new(&app);
    op.sign_in(ADMIN).await;
    let (a, b) = (
        waiting_job(&app, "mail").await,
        waiting_job(&app, "mail").await,
    );
    let other = waiting_job(&app, "other").await;
    let overview = op.get("/admin").await;
    assert!(
        overview
            .text
            .contains(r#"action="/admin/queues/mail/drain""#),
        "{}",
        overview.text
    );
    let ask = op.act("/admin", "/admin/queues/mail/drain", &[]).await;
    assert_eq!(ask.status, 200, "{}", ask.text);
    assert!(
        ask.text.contains(r#"<strong class="count">2</strong>"#),
        "{}",
        ask.text
    );
    assert_eq!(
        state(&app, a).await,
        JobState::Scheduled,
        "asking changes nothing"
    );
    let r = op
        .act("/admin", "/admin/queues/mail/drain", &[("confirm", "yes")])
        .await;
    assert_eq!(
        (r.status, r.header("location")),
        (303, "/admin?drained=mail&cancelled=2")
    );
    for id in [a, b] {
        assert_eq!(state(&app, id).await, JobState::Cancelled);
    }
    assert_eq!(state(&app, other).await, JobState::Scheduled);
    let notice = op.get("/admin?drained=mail&cancelled=2").await;
    assert!(notice
        .text
        .contains("Drained mail: cancelled 2 waiting jobs."));
    let empty = op.act("/admin", "/admin/queues/mail/drain", &[]).await;
    assert!(empty.text.contains("nothing to drain"), "{}", empty.text);
    refused(
        &op.act("/admin", "/admin/queues/bad%20name!/drain", &[])
            .await,
        400,
        "queue names are",
    );
    let audit = op.get("/admin/audit?target=queue:mail").await;
    assert!(
        audit
            .text
            .contains("<td>admin-token</td><td><code>queue.drain</code>"),
        "{}",
        audit.text
    );
}

const SCHEDULES: &str = r#"
[[schedules]]
name = "digest"
cron = "30 9 * * *"
timezone = "Europe/Berlin"
kind = "diag.noop"
"#;

keel_testkit::engine_test!(the_schedules_page_shows_next_and_last_runs_and_fires_one);
async fn the_schedules_page_shows_next_and_last_runs_and_fires_one(db: TestDb) {
    let app = TestApp::builder(db)
        .env("ADMIN_TOKEN", ADMIN)
        .keel_toml(SCHEDULES)
        .spawn()
        .await;
    let mut op = Operator::new(&app);
    op.sign_in(ADMIN).await;
    let services = app.services();
    let digest = services.scheduler.get("digest").unwrap();
    let next = digest.cron.next_after(app.clock().now()).unwrap();
    let page = op.get("/admin/schedules").await;
    assert_eq!(page.status, 200);
    let row = row_of(&page, "schedule-digest");
    for text in [
        "<code>30 9 * * *</code>",
        "Europe/Berlin",
        &next.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        "never",
    ] {
        assert!(row.contains(text), "{text:?} not in {row}");
    }
    let r = op
        .act("/admin/schedules", "/admin/schedules/digest/trigger", &[])
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let job: i64 = r
        .header("location")
        .strip_prefix("/admin/jobs/")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("{}", r.header("location")));
    let page = op.get("/admin/schedules").await;
    let row = row_of(&page, "schedule-digest");
    assert!(
        row.contains(&format!(r#"<a href="/admin/jobs/{job}">job {job}</a>"#)),
        "{row}"
    );
    assert!(!row.contains("never"), "{row}");
    let audit = op.get("/admin/audit?target=schedule:digest").await;
    assert!(
        audit
            .text
            .contains("<td>admin-token</td><td><code>schedule.trigger</code>"),
        "{}",
        audit.text
    );
}

/// The table row with id `id`.
fn row_of(page: &Page, id: &str) -> String {
    let start = page
        .text
        .find(&format!(r#"<tr id="{id}">"#))
        .unwrap_or_else(|| panic!("no row {id}: {}", page.text));
    let end = start + page.text[start..].find("</tr>").unwrap();
    page.text[start..end].to_string()
}

keel_testkit::engine_test!(billing_events_are_found_and_replayed_without_their_payload);
async fn billing_events_are_found_and_replayed_without_their_payload(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = billing_support::app(db, &config).spawn().await;
    let event = fixture("revenuecat", "initial_purchase");
    let event = set(event, "/event/expiration_at_ms", json!(ms_in_days(7)));
    let event = set(event, "/event/id", json!("evt-console-1"));
    assert_eq!(revenuecat(&app, &event).await.status, 200);
    let mut op = Operator::new(&app);
    op.sign_in(billing_support::ADMIN).await;

    let found = op
        .get("/admin/billing?provider=revenuecat&event_id=evt-console-1")
        .await;
    assert_eq!(found.status, 200, "{}", found.text);
    for text in [
        "<code>evt-console-1</code>",
        "INITIAL_PURCHASE",
        "com.subscription.weekly",
        "/admin/users?id=1234567890",
        ">Replay<",
    ] {
        assert!(found.text.contains(text), "{text:?} not in {}", found.text);
    }
    for secret in [
        "firstlast@gmail.com",
        "123456789012345",
        "4.99",
        billing_support::RC_SECRET,
        billing_support::KEY_1,
    ] {
        assert!(!found.text.contains(secret), "the page shows {secret:?}");
    }
    for query in [
        "user=someone-else",
        "type=RENEWAL",
        "provider=stripe",
        "from=2999-01-01T00:00",
        "to=2000-01-01T00:00",
    ] {
        let page = op.get(&format!("/admin/billing?{query}")).await;
        assert!(
            page.text.contains("No stored event matches"),
            "{query}: {}",
            page.text
        );
    }
    let by_user = op
        .get("/admin/billing?user=1234567890&type=INITIAL_PURCHASE&from=2000-01-01T00:00")
        .await;
    assert!(by_user.text.contains("evt-console-1"), "{}", by_user.text);
    refused(
        &op.get("/admin/billing?from=yesterday").await,
        400,
        "must be a time",
    );
    refused(
        &op.get("/admin/billing?provider=paypal").await,
        400,
        "Unknown provider",
    );

    let replay = [("provider", "revenuecat"), ("event_id", "evt-console-1")];
    let r = op
        .act("/admin/billing", "/admin/billing/replay", &replay)
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert!(
        r.header("location").contains("replayed=evt-console-1"),
        "{}",
        r.header("location")
    );
    let after = op.get(r.header("location")).await;
    assert!(
        after.text.contains("Replayed <code>evt-console-1</code>"),
        "{}",
        after.text
    );
    let missing = [("provider", "revenuecat"), ("event_id", "evt-none")];
    refused(
        &op.act("/admin/billing", "/admin/billing/replay", &missing)
            .await,
        400,
        "event_id: no stored event of this provider has this id.",
    );
    let audit = op.get("/admin/audit").await;
    assert!(
        audit
            .text
            .contains("<td>admin-token</td><td><code>billing.replay</code>"),
        "{}",
        audit.text
    );
    assert!(audit.text.contains("evt-console-1"));
    assert!(!audit.text.contains("firstlast@gmail.com"));
}
