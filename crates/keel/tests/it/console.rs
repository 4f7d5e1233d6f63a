//! The operations console at `/admin` over real HTTP (docs/CONSOLE.md): sign-in and sessions,
//! the pages, the actions and their audit rows, CSRF and `Origin` checks, the read-only role,
//! and a TLS-ending proxy in front.

use crate::auth_support::idp_app;
use crate::console_support::{Operator, Page, ADMIN};

use keel_testkit::{admin, FakeIdp, TestApp, TestDb};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

async fn console(db: TestDb, env: &[(&str, &str)]) -> TestApp {
    let mut builder = TestApp::builder(db).env("ADMIN_TOKEN", ADMIN);
    for (name, value) in env {
        builder = builder.env(name, value);
    }
    builder.spawn().await
}

/// A job in `queue` that waits an hour, so nothing runs it during the test.
async fn waiting_job(app: &TestApp, queue: &str) -> i64 {
    let spec = json!({ "kind": "diag.noop", "queue": queue, "run_at": "2999-01-01T00:00:00Z" });
    let r = admin(app, Method::POST, "/admin/api/jobs", Some(&spec)).await;
    r.ok(201)["id"].as_i64().unwrap()
}

fn refused(page: &Page, status: u16, why: &str) {
    assert_eq!(page.status, status, "{}", page.text);
    assert!(page.text.contains(why), "{why:?} not in {}", page.text);
    assert!(page.header("content-type").starts_with("text/html"));
}

fn count(page: &Page, needle: &str) -> usize {
    page.text.matches(needle).count()
}

keel_testkit::engine_test!(sign_in_sets_a_strict_cookie_and_stores_only_a_hash);
async fn sign_in_sets_a_strict_cookie_and_stores_only_a_hash(db: TestDb) {
    let app = console(db, &[]).await;
    let mut op = Operator::new(&app);
    let page = op.get("/admin").await;
    assert_eq!(
        (page.status, page.header("location")),
        (303, "/admin/login")
    );
    let form = op.get("/admin/login").await;
    assert_eq!(form.status, 200);
    assert!(form
        .header("content-security-policy")
        .contains("default-src 'none'"));
    refused(
        &op.post("/admin/login", &[("token", "wrong")]).await,
        401,
        "does not sign in",
    );

    let answer = op.sign_in(ADMIN).await;
    let cookie = answer.header("set-cookie");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    let id = op.cookie.clone().unwrap();
    let by_id = format!("SELECT count(*) FROM console_sessions WHERE id_hash = '{id}'");
    assert_eq!(app.db.scalar(&by_id).await, 0);
    assert_eq!(
        app.db.scalar("SELECT count(*) FROM console_sessions").await,
        1
    );

    for path in [
        "/admin",
        "/admin/",
        "/admin/jobs",
        "/admin/flags",
        "/admin/audit",
        "/admin/users?id=u-granted",
        "/admin/schedules",
        "/admin/billing",
    ] {
        let page = op.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.text);
        assert!(page
            .header("content-security-policy")
            .contains("style-src 'self'"));
        assert_eq!(page.header("referrer-policy"), "same-origin", "{path}");
        assert!(!page.text.contains(ADMIN), "{path} shows the admin token");
        assert!(!page.text.contains(&id), "{path} shows the session id");
    }
    let css = op.get("/admin/console.css").await;
    assert!(css.header("content-type").starts_with("text/css"));
    let script = op.get("/admin/console.js").await;
    assert!(script.header("content-type").starts_with("text/javascript"));
    assert!(script.text.contains("pausedBecause"));
    let page = op.get("/admin/jobs").await;
    let csp = page.header("content-security-policy");
    for part in [
        "script-src 'self'",
        "connect-src 'self'",
        "default-src 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(page
        .text
        .contains(r#"<script src="/admin/console.js" defer></script>"#));

    let out = op.act("/admin", "/admin/logout", &[]).await;
    assert_eq!((out.status, out.header("location")), (303, "/admin/login"));
    assert!(out.header("set-cookie").contains("Max-Age=0"));
    assert_eq!(op.get("/admin").await.status, 303, "the session ended");
    assert_eq!(
        app.db.scalar("SELECT count(*) FROM console_sessions").await,
        0
    );
}

keel_testkit::engine_test!(a_session_ends_after_twelve_hours);
async fn a_session_ends_after_twelve_hours(db: TestDb) {
    let app = console(db, &[]).await;
    let mut op = Operator::new(&app);
    op.sign_in(ADMIN).await;
    app.clock().advance(Duration::from_secs(12 * 3600 - 60));
    assert_eq!(op.get("/admin").await.status, 200, "still signed in");
    app.clock().advance(Duration::from_secs(120));
    let page = op.get("/admin").await;
    assert_eq!(
        (page.status, page.header("location")),
        (303, "/admin/login")
    );
    let csrf_of_the_old_session = [("csrf", "x"), ("enabled", "false")];
    let r = op
        .post("/admin/flags/workers", &csrf_of_the_old_session)
        .await;
    assert_eq!(r.status, 303, "an expired session changes nothing");
    let mut again = Operator::new(&app);
    again.sign_in(ADMIN).await;
    let rows = "SELECT count(*) FROM console_sessions";
    assert_eq!(
        app.db.scalar(rows).await,
        1,
        "the expired session was purged"
    );
}

keel_testkit::engine_test!(actions_change_state_and_each_has_its_audit_row);
async fn actions_change_state_and_each_has_its_audit_row(db: TestDb) {
    let app = console(db, &[]).await;
    let mut op = Operator::new(&app);
    op.sign_in(ADMIN).await;
    let (a, b) = (
        waiting_job(&app, "mail").await,
        waiting_job(&app, "mail").await,
    );
    let other = waiting_job(&app, "other").await;

    let page = op.get(&format!("/admin/jobs/{a}")).await;
    assert!(
        page.text.contains("diag.noop") && page.text.contains("2999-01-01"),
        "{}",
        page.text
    );
    assert_eq!(
        count(&page, ">Retry<"),
        0,
        "a waiting job cannot be retried"
    );
    let detail = format!("/admin/jobs/{a}");
    for id in [a, b, other] {
        let r = op
            .act(&detail, &format!("/admin/jobs/{id}/discard"), &[])
            .await;
        assert_eq!(r.status, 303, "{}", r.text);
    }
    let page = op.get(&detail).await;
    assert!(page.text.contains("state-discarded"), "{}", page.text);
    assert_eq!(count(&page, ">Retry<"), 1);
    assert_eq!(
        count(&page, ">Discard<"),
        0,
        "only the actions the state allows"
    );

    let r = op
        .act(&detail, &format!("/admin/jobs/{a}/retry"), &[])
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let state =
        |id: i64| format!("SELECT count(*) FROM jobs WHERE id = {id} AND state = 'available'");
    assert_eq!(app.db.scalar(&state(a)).await, 1);

    op.act(&detail, &format!("/admin/jobs/{a}/discard"), &[])
        .await;
    let list = op.get("/admin/jobs?queue=mail&state=discarded").await;
    assert!(
        list.text.contains(&format!("/admin/jobs/{b}\"")),
        "{}",
        list.text
    );
    assert!(
        !list.text.contains(&format!("/admin/jobs/{other}\"")),
        "the filter holds"
    );
    let failed_of_mail = [("action", "retry"), ("queue", "mail"), ("state", "failed")];
    let confirm = op
        .act(
            "/admin/jobs?queue=mail",
            "/admin/jobs/bulk",
            &failed_of_mail,
        )
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.text);
    assert!(
        confirm.text.contains(r#"<strong class="count">2</strong>"#),
        "{}",
        confirm.text
    );
    let mut confirmed = failed_of_mail.to_vec();
    confirmed.push(("confirm", "yes"));
    let r = op
        .act("/admin/jobs?queue=mail", "/admin/jobs/bulk", &confirmed)
        .await;
    assert_eq!(
        (r.status, r.header("location")),
        (
            303,
            "/admin/jobs?queue=mail&state=failed&done=retry&changed=2"
        )
    );
    for (id, available) in [(a, 1), (b, 1), (other, 0)] {
        assert_eq!(app.db.scalar(&state(id)).await, available, "job {id}");
    }

    let flags = op.get("/admin/flags").await;
    assert!(flags.text.contains("Switch off"), "{}", flags.text);
    let r = op
        .act(
            "/admin/flags",
            "/admin/flags/workers",
            &[("enabled", "false")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert!(!app
        .services()
        .flags
        .list()
        .await
        .unwrap()
        .iter()
        .any(|f| f.name == "workers" && f.enabled));
    let r = op
        .act(
            "/admin/flags",
            "/admin/flags/nonsense",
            &[("enabled", "false")],
        )
        .await;
    assert!(
        r.status == 422 && r.header("content-type").starts_with("text/html"),
        "{}",
        r.text
    );

    let audit = op.get("/admin/audit").await;
    for action in ["job.discard", "job.retry", "flag.set"] {
        assert!(
            audit.text.contains(action),
            "{action} not in the audit page"
        );
    }
    assert!(
        audit.text.contains("<td>queue:mail</td>"),
        "retry all failed of a queue"
    );
    // Three enqueues through the API and seven changes through the console, all by the session's
    // actor.
    assert_eq!(count(&audit, "<td>admin-token</td>"), 10, "{}", audit.text);
}

keel_testkit::engine_test!(grants_and_revocations_need_a_reason_and_are_audited);
async fn grants_and_revocations_need_a_reason_and_are_audited(db: TestDb) {
    let app = console(db, &[]).await;
    let mut op = Operator::new(&app);
    op.sign_in(ADMIN).await;
    let page = op.get("/admin/users?id=u-42").await;
    assert!(page.text.contains("No token of"), "{}", page.text);
    let grant = [("entitlement", "pro"), ("reason", "support ticket 7")];
    let r = op
        .act("/admin/users?id=u-42", "/admin/users/u-42/grant", &grant)
        .await;
    assert_eq!(
        (r.status, r.header("location")),
        (303, "/admin/users?id=u-42")
    );
    let page = op.get("/admin/users?id=u-42").await;
    assert!(
        page.text.contains("<code>pro</code>") && page.text.contains("active"),
        "{}",
        page.text
    );
    assert_eq!(count(&page, ">Revoke<"), 1);
    let silent = [("entitlement", "pro"), ("reason", " ")];
    let r = op
        .act("/admin/users?id=u-42", "/admin/users/u-42/revoke", &silent)
        .await;
    refused(&r, 422, "reason: is required");
    let revoke = [("entitlement", "pro"), ("reason", "refunded")];
    let r = op
        .act("/admin/users?id=u-42", "/admin/users/u-42/revoke", &revoke)
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let page = op.get("/admin/users?id=u-42").await;
    assert!(page.text.contains("inactive"), "{}", page.text);
    let audit = op.get("/admin/audit?target=u-42").await;
    assert_eq!(count(&audit, "<td>admin-token</td>"), 2, "{}", audit.text);
    assert!(audit.text.contains("support ticket 7") && audit.text.contains("refunded"));
}

keel_testkit::engine_test!(queues_pause_and_resume_and_schedules_fire_from_the_overview);
async fn queues_pause_and_resume_and_schedules_fire_from_the_overview(db: TestDb) {
    let app = console(db, &[]).await;
    let mut op = Operator::new(&app);
    op.sign_in(ADMIN).await;
    waiting_job(&app, "mail").await;
    let overview = op.get("/admin").await;
    assert!(
        overview
            .text
            .contains(r#"action="/admin/queues/mail/pause""#),
        "{}",
        overview.text
    );
    let r = op.act("/admin", "/admin/queues/mail/pause", &[]).await;
    assert_eq!(
        (r.status, r.header("location")),
        (303, "/admin"),
        "{}",
        r.text
    );
    let overview = op.get("/admin").await;
    assert!(
        overview
            .text
            .contains(r#"action="/admin/queues/mail/resume""#),
        "{}",
        overview.text
    );
    assert!(overview.text.contains("paused"));
    op.act("/admin", "/admin/queues/mail/resume", &[]).await;
    let bad = op
        .act("/admin", "/admin/queues/no%20such%20queue!/pause", &[])
        .await;
    refused(&bad, 400, "queue names are");

    // Fired once per period of its cron (here already at start-up): the answer shows the job of
    // this period's firing.
    let jobs = "SELECT max(id) FROM jobs WHERE kind = 'jobs.prune'";
    let prune = format!("/admin/jobs/{}", app.db.scalar(jobs).await);
    let r = op
        .act("/admin", "/admin/schedules/jobs.prune/trigger", &[])
        .await;
    assert_eq!(
        (r.status, r.header("location")),
        (303, prune.as_str()),
        "{}",
        r.text
    );
    refused(
        &op.act("/admin", "/admin/schedules/nonesuch/trigger", &[])
            .await,
        404,
        "",
    );

    let audit = op.get("/admin/audit").await;
    assert!(audit.text.contains("flag:queue:mail"), "{}", audit.text);
    assert_eq!(
        count(&audit, "<code>flag.set</code>"),
        2,
        "a pause and a resume"
    );
}

keel_testkit::engine_test!(changes_need_the_session_csrf_token_and_this_origin);
async fn changes_need_the_session_csrf_token_and_this_origin(db: TestDb) {
    let app = console(db, &[]).await;
    let mut op = Operator::new(&app);
    op.sign_in(ADMIN).await;
    let csrf = op.get("/admin/flags").await.csrf();
    let flip = [("enabled", "false")];
    refused(
        &op.post("/admin/flags/workers", &flip).await,
        403,
        "CSRF token",
    );
    let wrong = [("csrf", "AAAA"), ("enabled", "false")];
    refused(
        &op.post("/admin/flags/workers", &wrong).await,
        403,
        "CSRF token",
    );
    let good = [("csrf", csrf.as_str()), ("enabled", "false")];
    for origin in ["https://evil.example", "null", ""] {
        let mut other = Operator::with_origin(&app, origin, HeaderMap::new());
        other.cookie = op.cookie.clone();
        refused(
            &other.post("/admin/flags/workers", &good).await,
            403,
            "console's own pages",
        );
    }
    let mut stranger = Operator::new(&app);
    stranger.cookie = Some("not-a-session".into());
    let r = stranger.post("/admin/flags/workers", &good).await;
    assert_eq!((r.status, r.header("location")), (303, "/admin/login"));
    let mut foreign = Operator::with_origin(&app, "https://evil.example", HeaderMap::new());
    refused(
        &foreign.post("/admin/login", &[("token", ADMIN)]).await,
        403,
        "another site",
    );
    foreign.cookie = None;
    assert_eq!(
        app.db.scalar("SELECT count(*) FROM audit_log").await,
        0,
        "nothing changed"
    );
    assert_eq!(
        op.post("/admin/flags/workers", &good).await.status,
        303,
        "the right form works"
    );
}

keel_testkit::engine_test!(read_only_operators_see_everything_and_change_nothing);
async fn read_only_operators_see_everything_and_change_nothing(db: TestDb) {
    let idp = FakeIdp::start().await;
    let app = idp_app(db, &idp)
        .env("ADMIN_TOKEN", ADMIN)
        .env("ADMIN_READONLY_USER_IDS", "u-reader")
        .spawn()
        .await;
    let job = waiting_job(&app, "mail").await;
    let mut plain = Operator::new(&app);
    let user = idp.token(&idp.claims("u-plain"));
    refused(
        &plain.post("/admin/login", &[("token", &user)]).await,
        403,
        "neither an administrator",
    );
    plain.cookie = None;

    let mut reader = Operator::new(&app);
    reader.sign_in(&idp.token(&idp.claims("u-reader"))).await;
    for path in [
        "/admin",
        "/admin/jobs?queue=mail",
        &format!("/admin/jobs/{job}"),
        "/admin/flags",
        "/admin/audit",
        "/admin/users?id=u-granted",
        "/admin/schedules",
        "/admin/billing",
    ] {
        let page = reader.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.text.contains("user:u-reader (read-only)"), "{path}");
        assert_eq!(
            count(&page, r#"method="post""#),
            1,
            "{path}: only the sign-out form"
        );
    }
    let csrf = reader.get("/admin/flags").await.csrf();
    let job_id = job.to_string();
    let changes = [
        (
            "/admin/flags/workers".to_string(),
            vec![("enabled", "false")],
        ),
        (format!("/admin/jobs/{job}/discard"), vec![]),
        (
            "/admin/jobs/bulk".to_string(),
            vec![("action", "retry"), ("queue", "mail"), ("confirm", "yes")],
        ),
        (
            "/admin/jobs/selection".to_string(),
            vec![("action", "discard"), ("id", job_id.as_str())],
        ),
        (
            "/admin/queues/mail/drain".to_string(),
            vec![("confirm", "yes")],
        ),
        ("/admin/schedules/jobs.prune/trigger".to_string(), vec![]),
        (
            "/admin/billing/replay".to_string(),
            vec![("provider", "revenuecat"), ("event_id", "evt-1")],
        ),
    ];
    for (path, fields) in changes {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend(fields);
        refused(&reader.post(&path, &all).await, 403, "read-only");
    }
    assert_eq!(
        app.db
            .scalar("SELECT count(*) FROM audit_log WHERE action <> 'job.enqueue'")
            .await,
        0
    );
    let out = reader
        .post("/admin/logout", &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(out.status, 303, "a read-only operator can sign out");
}

keel_testkit::engine_test!(sign_in_and_changes_work_behind_a_tls_ending_proxy);
async fn sign_in_and_changes_work_behind_a_tls_ending_proxy(db: TestDb) {
    let app = console(db, &[("TRUSTED_PROXIES", "127.0.0.1, ::1")]).await;
    let mut proxied = HeaderMap::new();
    proxied.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    proxied.insert(
        "x-forwarded-host",
        HeaderValue::from_static("ops.example.com"),
    );
    proxied.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
    let mut op = Operator::with_origin(&app, "https://ops.example.com", proxied);
    op.sign_in(ADMIN).await;
    let r = op
        .act(
            "/admin/flags",
            "/admin/flags/enqueue",
            &[("enabled", "false")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let audit = op.get("/admin/audit").await;
    assert!(audit.text.contains("flag:enqueue"), "{}", audit.text);

    // The same headers from a peer that is not a trusted proxy name no host of this console.
    let direct = console(TestDb::sqlite(), &[]).await;
    let mut spoofed = HeaderMap::new();
    spoofed.insert(
        "x-forwarded-host",
        HeaderValue::from_static("ops.example.com"),
    );
    let foreign = Operator::with_origin(&direct, "https://ops.example.com", spoofed);
    refused(
        &foreign.post("/admin/login", &[("token", ADMIN)]).await,
        403,
        "another site",
    );
}

keel_testkit::engine_test!(the_worker_role_serves_no_console);
async fn the_worker_role_serves_no_console(db: TestDb) {
    let app = console(db, &[("PROCESS_ROLE", "worker")]).await;
    for path in ["/admin", "/admin/login", "/admin/console.css"] {
        assert_eq!(app.get(path).await.status(), 404, "{path}");
    }
}
