//! HTTP job kinds across real processes on one Postgres: a worker killed during a delivery leaves
//! the job to be delivered again with the same `webhook-id`, and a schedule of an HTTP kind run by
//! three processes delivers each tick once.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use keel_testkit::{eventually, Answer, KeelProcess, Receiver, TestDb};

use common::{bin, keel};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const LIMIT: Duration = Duration::from_secs(60);

fn env<'a>(db: &'a TestDb, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("DATABASE_URL", db.url()),
        ("LOG_LEVEL", "warn"),
        ("APP_WEBHOOK_SECRET", SECRET),
    ];
    env.extend_from_slice(extra);
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_delivery_leaves_it_to_be_delivered_again_with_the_same_id() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let receiver = Receiver::start().await;
    // The first delivery is held open until the worker making it is gone.
    receiver.script([Answer::Hold]);
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[jobs.http.\"app.work\"]\nurl = \"{}\"\ntimeout = 4\n",
        receiver.url("/jobs/work")
    );
    std::fs::write(dir.path().join("keel.toml"), toml).unwrap();
    let env = env(&db, &[("JOB_LEASE_SECONDS", "5")]);
    keel(dir.path(), &env, &["migrate", "up"]).assert_code(0);
    let enqueued = keel(
        dir.path(),
        &env,
        &["queue", "enqueue", "app.work", "--args", r#"{"n":1}"#],
    );
    enqueued.assert_code(0);

    let mut first = KeelProcess::serve(&bin(), dir.path(), &env, &["--role", "worker"]);
    first.wait_ready(LIMIT).await;
    let held = receiver.wait_for(1, LIMIT).await;
    first.signal("KILL");
    first.wait_exit(LIMIT).await;

    let mut second = KeelProcess::serve(&bin(), dir.path(), &env, &["--role", "worker"]);
    second.wait_ready(LIMIT).await;
    let deliveries = receiver.wait_for(2, LIMIT).await;
    let completed = "SELECT count(*) FROM jobs WHERE kind = 'app.work' AND state = 'completed'";
    eventually("the job is completed", LIMIT, || async {
        db.scalar(completed).await == 1
    })
    .await;
    let id = db
        .scalar("SELECT id FROM jobs WHERE kind = 'app.work'")
        .await;
    assert_eq!(held[0].header("webhook-id"), format!("job_{id}"));
    assert_eq!(deliveries[1].header("webhook-id"), format!("job_{id}"));
    assert_eq!(deliveries[1].json()["attempt"], 2);
    assert_eq!(deliveries[1].json()["args"], serde_json::json!({ "n": 1 }));
    second.signal("TERM");
    assert!(second.wait_exit(LIMIT).await.success(), "{}", second.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_deliver_each_tick_of_an_http_schedule_once() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[jobs.http.\"app.tick\"]\nurl = \"{}\"\ntimeout = 5\n\
         [[schedules]]\nname = \"tick\"\ncron = \"* * * * * *\"\nkind = \"app.tick\"\n",
        receiver.url("/jobs/tick")
    );
    std::fs::write(dir.path().join("keel.toml"), toml).unwrap();
    let env = env(&db, &[]);
    keel(dir.path(), &env, &["migrate", "up"]).assert_code(0);
    let mut processes = Vec::new();
    for role in ["all", "worker", "worker"] {
        processes.push(KeelProcess::serve(
            &bin(),
            dir.path(),
            &env,
            &["--role", role],
        ));
    }
    for p in processes.iter_mut() {
        p.wait_ready(LIMIT).await;
    }
    receiver.wait_for(6, LIMIT).await;
    keel(dir.path(), &env, &["flags", "set", "scheduler", "off"]).assert_code(0);

    // Every recorded tick has its job, and every job has reached the receiver.
    let ticks = "SELECT count(*) FROM schedule_ticks WHERE name = 'tick'";
    let done = "SELECT count(*) FROM jobs WHERE kind = 'app.tick' AND state = 'completed'";
    eventually("every tick is delivered", LIMIT, || async {
        let (ticks, done) = (db.scalar(ticks).await, db.scalar(done).await);
        let delivered = receiver.count() as i64;
        ticks == done && done == delivered
    })
    .await;

    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for delivery in receiver.deliveries() {
        *per_id
            .entry(delivery.header("webhook-id").to_string())
            .or_default() += 1;
    }
    let twice: Vec<_> = per_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let (ticks, span) = (
        db.scalar(ticks).await,
        db.scalar(
            "SELECT (EXTRACT(EPOCH FROM max(fire_at)) - EXTRACT(EPOCH FROM min(fire_at)))::bigint + 1
             FROM schedule_ticks WHERE name = 'tick'",
        )
        .await,
    );
    assert!(ticks >= 6, "{ticks} ticks");
    assert_eq!(
        ticks, span,
        "every second between the first and last tick fired once"
    );
    assert!(per_id.len() as i64 >= ticks.min(6));
    for p in &processes {
        p.signal("TERM");
    }
    for p in processes.iter_mut() {
        assert!(p.wait_exit(LIMIT).await.success(), "{}", p.logs());
    }
}
