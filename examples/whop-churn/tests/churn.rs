//! The churn example end to end: with three companies, one of whose reminder sends always fail,
//! the other two receive every tick's reminder (each recorded with its audit row) while the
//! failing one's breaker opens after the threshold and defers its jobs; three processes on one
//! database fan each tick out once.

mod support;

use keel::clock::Clock;
use keel_testkit::{eventually, TestDb};
use support::*;

/// Consecutive failures that open a company's breaker (Keel's worker default).
const THRESHOLD: usize = 5;

fn sql_count(table_where: &str) -> String {
    format!("SELECT count(*) FROM {table_where}")
}

keel_testkit::engine_test!(a_failing_company_is_deferred_while_the_others_get_every_reminder);
async fn a_failing_company_is_deferred_while_the_others_get_every_reminder(db: TestDb) {
    let (a, b, c) = (
        company_of("prod_a"),
        company_of("prod_b"),
        company_of("prod_c"),
    );
    let notifier = Notifier::start(vec![c.clone()]).await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::system();
    let app = start(settings(&db, dir.path()), &notifier, &clock).await;
    for (user, product) in [
        ("user_a", "prod_a"),
        ("user_b", "prod_b"),
        ("user_c", "prod_c"),
    ] {
        canceling(&app, &clock, user, product).await;
    }
    let mut ticks = Vec::new();
    for _ in 0..THRESHOLD + 1 {
        let tick = next_tick(&clock);
        // Recorded (after the send) for a and b; attempted for c.
        let recorded = format!("churn_reminders WHERE tick = '{tick}'");
        eventually("the tick's reminders", LIMIT, || async {
            db.scalar(&sql_count(&recorded)).await == 2 && notifier.count(&c, &tick) == 1
        })
        .await;
        ticks.push(tick);
    }
    for company in [&a, &b] {
        for tick in &ticks {
            assert_eq!(notifier.count(company, tick), 1, "{company} {tick}");
        }
        for tick in &ticks {
            let row = format!("churn_reminders WHERE company_id = '{company}' AND tick = '{tick}'");
            assert_eq!(db.scalar(&sql_count(&row)).await, 1, "{company} {tick}");
        }
    }
    let c_rows = format!("churn_reminders WHERE company_id = '{c}'");
    assert_eq!(db.scalar(&sql_count(&c_rows)).await, 0);
    let audits = "audit_log WHERE action = 'churn.reminder'";
    // (A tick the scheduler fired on starting, before the clock moved, may add its own.)
    let reminders = db.scalar(&sql_count("churn_reminders")).await;
    assert!(reminders >= 2 * ticks.len() as i64, "{reminders}");
    assert_eq!(db.scalar(&sql_count(audits)).await, reminders);

    // The breaker of the failing company is open: its nudge waits, another company's runs.
    let open = format!("job_breakers WHERE key = 'whop-company:{c}' AND open_until IS NOT NULL");
    assert_eq!(db.scalar(&sql_count(&open)).await, 1);
    let before = notifier.all().len();
    let nudge = |company: String| {
        let url = format!("{}/v1/companies/{company}/nudge", app.url);
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(token(ADMIN, &company))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
        }
    };
    nudge(c.clone()).await;
    nudge(a.clone()).await;
    eventually("a's nudge", LIMIT, || async {
        notifier.all()[before..]
            .iter()
            .any(|(co, t)| co == &a && t.starts_with("nudge:"))
    })
    .await;
    let c_nudged = || {
        notifier.all()[before..]
            .iter()
            .any(|(co, t)| co == &c && t.starts_with("nudge:"))
    };
    assert!(
        !c_nudged(),
        "the failing company ran while its breaker was open"
    );
    clock.advance(std::time::Duration::from_secs(61));
    eventually("c's nudge after the cooldown", LIMIT, || async {
        c_nudged()
    })
    .await;
    app.stop().await;
}

keel_testkit::engine_test!(three_processes_fan_each_tick_out_once);
async fn three_processes_fan_each_tick_out_once(db: TestDb) {
    let (a, b) = (company_of("prod_a"), company_of("prod_b"));
    let notifier = Notifier::start(Vec::new()).await;
    let clock = Clock::system();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut apps = Vec::new();
    for dir in &dirs {
        apps.push(start(settings(&db, dir.path()), &notifier, &clock).await);
    }
    canceling(&apps[0], &clock, "user_a", "prod_a").await;
    canceling(&apps[1], &clock, "user_b", "prod_b").await;
    let mut ticks = Vec::new();
    for _ in 0..3 {
        let tick = next_tick(&clock);
        eventually("the tick's reminders", LIMIT, || async {
            notifier.count(&a, &tick) >= 1 && notifier.count(&b, &tick) >= 1
        })
        .await;
        ticks.push(tick);
    }
    // Every job of the last tick has finished before counting.
    let busy = "jobs WHERE kind LIKE 'churn.%' AND state IN ('available', 'running', 'scheduled', 'retryable')";
    eventually("the queue is idle", LIMIT, || async {
        db.scalar(&sql_count(busy)).await == 0
    })
    .await;
    for tick in &ticks {
        assert_eq!(notifier.count(&a, tick), 1, "{tick}: sent twice");
        assert_eq!(notifier.count(&b, tick), 1, "{tick}: sent twice");
        let remind =
            format!("jobs WHERE kind = 'churn.remind' AND CAST(args AS TEXT) LIKE '%{tick}%'");
        assert_eq!(
            db.scalar(&sql_count(&remind)).await,
            2,
            "{tick}: fanned out twice"
        );
    }
    for app in apps {
        app.stop().await;
    }
}
